"""initial schema

Revision ID: 597e111dda3b
Revises: 
Create Date: 2026-11-22 10:45:56.602054

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import advanced_alchemy.types

revision: str = '597e111dda3b'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('events',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('slug', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.Enum('in_person', 'online', 'hybrid', name='eventkind', native_enum=False, length=32), nullable=False),
    sa.Column('status', sa.Enum('draft', 'published', 'cancelled', name='eventstatus', native_enum=False, length=32), nullable=False),
    sa.Column('base_language', sa.String(length=8), nullable=False),
    sa.Column('texts', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('starts_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('ends_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('venue_name', sa.String(length=200), nullable=False),
    sa.Column('venue_address', sa.String(length=300), nullable=False),
    sa.Column('venue_city', sa.String(length=120), nullable=False),
    sa.Column('venue_country', sa.String(length=2), nullable=False),
    sa.Column('join_url', sa.String(length=1000), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('seats_taken', sa.Integer(), server_default='0', nullable=False),
    sa.Column('registration_opens_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('registration_closes_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('approval_required', sa.Boolean(), nullable=False),
    sa.Column('contact_name', sa.String(length=200), nullable=False),
    sa.Column('contact_email', sa.String(length=320), nullable=False),
    sa.Column('invite_sequence', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    sa.UniqueConstraint('slug', name=op.f('uq_events_slug'))
    )
    op.create_table('registrations',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('email_normalized', sa.String(length=320), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('institution', sa.String(length=200), nullable=False),
    sa.Column('position', sa.String(length=200), nullable=False),
    sa.Column('sector', sa.Enum('police', 'prosecution', 'judiciary', 'penitentiary', 'customs', 'ministry', 'international_organisation', 'other', name='sector', native_enum=False, length=32), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('status', sa.Enum('confirmed', 'pending_approval', 'waitlisted', 'cancelled', 'rejected', name='registrationstatus', native_enum=False, length=32), nullable=False),
    sa.Column('ticket_version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('ticket_hash', sa.String(length=64), nullable=False),
    sa.Column('manage_token_version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('manage_token_hash', sa.String(length=64), nullable=False),
    sa.Column('invite_sequence', sa.Integer(), server_default='0', nullable=False),
    sa.Column('privacy_notice_version', sa.String(length=32), nullable=False),
    sa.Column('consent_given_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('cancelled_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_registrations_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registrations')),
    sa.UniqueConstraint('manage_token_hash', name=op.f('uq_registrations_manage_token_hash')),
    sa.UniqueConstraint('ticket_hash', name=op.f('uq_registrations_ticket_hash'))
    )
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registrations_email_normalized'), ['email_normalized'], unique=False)
        batch_op.create_index('ix_registrations_event_status', ['event_id', 'status'], unique=False)
        batch_op.create_index('uq_registrations_active_email', ['event_id', 'email_normalized'], unique=True, sqlite_where=sa.text("status IN ('confirmed', 'pending_approval', 'waitlisted')"), postgresql_where=sa.text("status IN ('confirmed', 'pending_approval', 'waitlisted')"))

    op.create_table('outbox_messages',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('registration_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('payload', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('dedupe_key', sa.String(length=200), nullable=True),
    sa.Column('status', sa.Enum('queued', 'sending', 'sent', 'failed', name='outboxstatus', native_enum=False, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('locked_until', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('locked_by', sa.String(length=120), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('sent_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_outbox_messages_registration_id_registrations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_messages_dedupe_key')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbox_messages_message_id'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_messages_registration_id'), ['registration_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_messages_registration_id'))
        batch_op.drop_index('ix_outbox_due')

    op.drop_table('outbox_messages')
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_index('uq_registrations_active_email', sqlite_where=sa.text("status IN ('confirmed', 'pending_approval', 'waitlisted')"), postgresql_where=sa.text("status IN ('confirmed', 'pending_approval', 'waitlisted')"))
        batch_op.drop_index('ix_registrations_event_status')
        batch_op.drop_index(batch_op.f('ix_registrations_email_normalized'))

    op.drop_table('registrations')
    op.drop_table('events')
