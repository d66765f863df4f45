"""registrations: anonymised_at marks erased personal data

Revision ID: 8e2b9aab7673
Revises: 1e4fcb020855
Create Date: 2026-11-22 13:40:00.000000

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import advanced_alchemy.types


revision: str = '8e2b9aab7673'
down_revision: str | None = '1e4fcb020855'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('anonymised_at', advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('registrations', schema=None) as batch_op:
        batch_op.drop_column('anonymised_at')
