"""index registrations by name for sorted lists

Revision ID: 1e4fcb020855
Revises: fb9fa326f4cd
Create Date: 2026-11-22 11:57:18.166724

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import advanced_alchemy.types


revision: str = '1e4fcb020855'
down_revision: str | None = 'fb9fa326f4cd'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.create_index('ix_registrations_event_name', ['event_id', 'full_name', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_index('ix_registrations_event_name')

