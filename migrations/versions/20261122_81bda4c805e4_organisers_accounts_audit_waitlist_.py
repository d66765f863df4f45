"""organisers accounts audit waitlist messages

Revision ID: 81bda4c805e4
Revises: 597e111dda3b
Create Date: 2026-11-22 11:10:28.017511

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import advanced_alchemy.types

revision: str = '81bda4c805e4'
down_revision: str | None = '597e111dda3b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rate_limit_buckets',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('window_started_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_limit_buckets')),
    sa.UniqueConstraint('key', name=op.f('uq_rate_limit_buckets_key'))
    )
    op.create_table('users',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('role', sa.Enum('admin', 'event_manager', 'focal_point', 'checkin_staff', name='role', native_enum=False, length=32), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('last_login_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('api_tokens',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('created_by_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('revoked_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('last_used_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_api_tokens_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('actor_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('actor_label', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('details', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_log_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_audit_log_event_id_events'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
        batch_op.create_index('ix_audit_log_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_event_id'), ['event_id'], unique=False)

    op.create_table('event_assignments',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_event_assignments_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_event_assignments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event_assignments')),
    sa.UniqueConstraint('user_id', 'event_id', name=op.f('uq_event_assignments_user_id'))
    )
    with op.batch_alter_table('event_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_assignments_event_id'), ['event_id'], unique=False)

    op.create_table('focal_point_countries',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_focal_point_countries_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_focal_point_countries')),
    sa.UniqueConstraint('user_id', 'country', name=op.f('uq_focal_point_countries_user_id'))
    )
    op.create_table('mass_messages',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('texts', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('filters', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('created_by_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('recipient_count', sa.Integer(), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_mass_messages_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_mass_messages_event_id_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mass_messages'))
    )
    with op.batch_alter_table('mass_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mass_messages_event_id'), ['event_id'], unique=False)

    op.create_table('user_sessions',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('expires_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash'))
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('registration_changes',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('registration_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('from_status', sa.Enum('confirmed', 'pending_approval', 'waitlisted', 'cancelled', 'rejected', name='registrationstatus', native_enum=False, length=32), nullable=True),
    sa.Column('to_status', sa.Enum('confirmed', 'pending_approval', 'waitlisted', 'cancelled', 'rejected', name='registrationstatus', native_enum=False, length=32), nullable=False),
    sa.Column('actor_label', sa.String(length=320), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_registration_changes_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_registration_changes'))
    )
    with op.batch_alter_table('registration_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_registration_changes_registration_id'), ['registration_id'], unique=False)

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waitlist_enabled', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('reminder_offsets_minutes', advanced_alchemy.types.JsonB, server_default='[1440, 60]', nullable=False))

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mass_message_id', advanced_alchemy.types.GUID(length=16), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_messages_mass_message_id'), ['mass_message_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_outbox_messages_mass_message_id_mass_messages'), 'mass_messages', ['mass_message_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waitlisted_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True))
        batch_op.create_index('ix_registrations_event_country', ['event_id', 'country'], unique=False)
        batch_op.create_index('ix_registrations_event_created', ['event_id', 'created_at'], unique=False)
        batch_op.create_index('ix_registrations_event_waitlist', ['event_id', 'status', 'waitlisted_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_index('ix_registrations_event_waitlist')
        batch_op.drop_index('ix_registrations_event_created')
        batch_op.drop_index('ix_registrations_event_country')
        batch_op.drop_column('waitlisted_at')

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_messages_mass_message_id_mass_messages'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_outbox_messages_mass_message_id'))
        batch_op.drop_column('mass_message_id')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('reminder_offsets_minutes')
        batch_op.drop_column('waitlist_enabled')

    with op.batch_alter_table('registration_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_registration_changes_registration_id'))

    op.drop_table('registration_changes')
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))
        batch_op.drop_index(batch_op.f('ix_user_sessions_expires_at'))

    op.drop_table('user_sessions')
    with op.batch_alter_table('mass_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mass_messages_event_id'))

    op.drop_table('mass_messages')
    op.drop_table('focal_point_countries')
    with op.batch_alter_table('event_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_assignments_event_id'))

    op.drop_table('event_assignments')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_event_id'))
        batch_op.drop_index('ix_audit_log_created_at')
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))

    op.drop_table('audit_log')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('rate_limit_buckets')
