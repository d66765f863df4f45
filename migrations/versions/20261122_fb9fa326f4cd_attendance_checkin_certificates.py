"""attendance checkin certificates

Revision ID: fb9fa326f4cd
Revises: 81bda4c805e4
Create Date: 2026-11-22 11:33:55.485762

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import advanced_alchemy.types

revision: str = 'fb9fa326f4cd'
down_revision: str | None = '81bda4c805e4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('attendance_imports',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('summary', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_attendance_imports_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_attendance_imports_uploaded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendance_imports')),
    sa.UniqueConstraint('event_id', 'content_sha256', name=op.f('uq_attendance_imports_event_id'))
    )
    with op.batch_alter_table('attendance_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendance_imports_event_id'), ['event_id'], unique=False)

    op.create_table('certificates',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('registration_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('code_version', sa.Integer(), nullable=False),
    sa.Column('basis', sa.String(length=20), nullable=False),
    sa.Column('issued_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('revoked_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_certificates_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificates')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_certificates_code_hash')),
    sa.UniqueConstraint('registration_id', name=op.f('uq_certificates_registration_id'))
    )
    op.create_table('checkins',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('registration_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('device', sa.String(length=120), nullable=False),
    sa.Column('staff_user_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('scanned_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('nonce', sa.String(length=100), nullable=False),
    sa.Column('undone_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
    sa.Column('undone_by_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_checkins_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_checkins_registration_id_registrations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_user_id'], ['users.id'], name=op.f('fk_checkins_staff_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['undone_by_id'], ['users.id'], name=op.f('fk_checkins_undone_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkins')),
    sa.UniqueConstraint('nonce', name=op.f('uq_checkins_nonce'))
    )
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkins_event_id'), ['event_id'], unique=False)
        batch_op.create_index('uq_checkins_live_registration', ['registration_id'], unique=True, sqlite_where=sa.text('undone_at IS NULL'), postgresql_where=sa.text('undone_at IS NULL'))

    op.create_table('join_clicks',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('registration_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_join_clicks_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_join_clicks_registration_id_registrations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_join_clicks'))
    )
    with op.batch_alter_table('join_clicks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_join_clicks_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_join_clicks_registration_id'), ['registration_id'], unique=False)

    op.create_table('online_attendance',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('identity', sa.String(length=320), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('display_name', sa.String(length=300), nullable=False),
    sa.Column('registration_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('segments', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('minutes', sa.Float(), nullable=False),
    sa.Column('matched_by', sa.String(length=20), nullable=False),
    sa.Column('import_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_online_attendance_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['import_id'], ['attendance_imports.id'], name=op.f('fk_online_attendance_import_id_attendance_imports'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_online_attendance_registration_id_registrations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_online_attendance')),
    sa.UniqueConstraint('event_id', 'identity', name=op.f('uq_online_attendance_event_id'))
    )
    with op.batch_alter_table('online_attendance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_online_attendance_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_online_attendance_registration_id'), ['registration_id'], unique=False)

    op.create_table('scan_attempts',
    sa.Column('id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('event_id', advanced_alchemy.types.GUID(length=16), nullable=False),
    sa.Column('registration_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('nonce', sa.String(length=100), nullable=False),
    sa.Column('device', sa.String(length=120), nullable=False),
    sa.Column('staff_user_id', advanced_alchemy.types.GUID(length=16), nullable=True),
    sa.Column('result', sa.String(length=40), nullable=False),
    sa.Column('scanned_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('answer', advanced_alchemy.types.JsonB, nullable=False),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.Column('updated_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_scan_attempts_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['registration_id'], ['registrations.id'], name=op.f('fk_scan_attempts_registration_id_registrations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['staff_user_id'], ['users.id'], name=op.f('fk_scan_attempts_staff_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scan_attempts')),
    sa.UniqueConstraint('nonce', name=op.f('uq_scan_attempts_nonce'))
    )
    with op.batch_alter_table('scan_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_scan_attempts_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scan_attempts_registration_id'), ['registration_id'], unique=False)

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attendance_threshold_percent', sa.Integer(), server_default='60', nullable=False))

    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('join_token_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_registrations_join_token_hash'), ['join_token_hash'])



def downgrade() -> None:
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_registrations_join_token_hash'), type_='unique')
        batch_op.drop_column('join_token_hash')

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('attendance_threshold_percent')

    with op.batch_alter_table('scan_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scan_attempts_registration_id'))
        batch_op.drop_index(batch_op.f('ix_scan_attempts_event_id'))

    op.drop_table('scan_attempts')
    with op.batch_alter_table('online_attendance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_online_attendance_registration_id'))
        batch_op.drop_index(batch_op.f('ix_online_attendance_event_id'))

    op.drop_table('online_attendance')
    with op.batch_alter_table('join_clicks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_join_clicks_registration_id'))
        batch_op.drop_index(batch_op.f('ix_join_clicks_event_id'))

    op.drop_table('join_clicks')
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_index('uq_checkins_live_registration', sqlite_where=sa.text('undone_at IS NULL'), postgresql_where=sa.text('undone_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_checkins_event_id'))

    op.drop_table('checkins')
    op.drop_table('certificates')
    with op.batch_alter_table('attendance_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_attendance_imports_event_id'))

    op.drop_table('attendance_imports')
