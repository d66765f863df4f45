"""attendee search and filter indexes

Filtered attendee pages walk (event_id, filter, created_at, id) in order and stop at the page's end;
the other common filter is the last column, so the page's count reads only the index.

Search (substring of name, email or institution, case ignored) gets a trigram index: pg_trgm's GIN
on PostgreSQL (the query uses ILIKE), an FTS5 table with the trigram tokenizer on SQLite, kept in step
with ``registrations`` by triggers. A later migration that rebuilds ``registrations`` in SQLite batch
mode drops those triggers and renumbers the rowids: it must create them again and run 'rebuild'.

Revision ID: 9e0bd3dc1f73
Revises: 8e2b9aab7673
Create Date: 2026-11-22 16:06:47.697403

"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '9e0bd3dc1f73'
down_revision: str | None = '8e2b9aab7673'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCHED = ("full_name", "email", "institution")

_FTS_COLUMNS = ", ".join(SEARCHED)
_NEW = ", ".join(f"new.{column}" for column in SEARCHED)
_OLD = ", ".join(f"old.{column}" for column in SEARCHED)
SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE registrations_search USING fts5("
    f"{_FTS_COLUMNS}, content='registrations', content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER registrations_search_insert AFTER INSERT ON registrations BEGIN "
    f"INSERT INTO registrations_search(rowid, {_FTS_COLUMNS}) VALUES (new.rowid, {_NEW}); END",
    "CREATE TRIGGER registrations_search_delete AFTER DELETE ON registrations BEGIN "
    f"INSERT INTO registrations_search(registrations_search, rowid, {_FTS_COLUMNS}) "
    f"VALUES ('delete', old.rowid, {_OLD}); END",
    f"CREATE TRIGGER registrations_search_update AFTER UPDATE OF {_FTS_COLUMNS} ON registrations BEGIN "
    f"INSERT INTO registrations_search(registrations_search, rowid, {_FTS_COLUMNS}) "
    f"VALUES ('delete', old.rowid, {_OLD}); "
    f"INSERT INTO registrations_search(rowid, {_FTS_COLUMNS}) VALUES (new.rowid, {_NEW}); END",
    "INSERT INTO registrations_search(registrations_search) VALUES ('rebuild')",
]
SQLITE_DOWNGRADE = [
    "DROP TRIGGER registrations_search_update",
    "DROP TRIGGER registrations_search_delete",
    "DROP TRIGGER registrations_search_insert",
    "DROP TABLE registrations_search",
]


def upgrade() -> None:
    op.create_index('ix_registrations_event_created_id', 'registrations', ['event_id', 'created_at', 'id'])
    op.create_index(
        'ix_registrations_event_status_created',
        'registrations',
        ['event_id', 'status', 'created_at', 'id', 'country'],
    )
    op.create_index(
        'ix_registrations_event_country_created',
        'registrations',
        ['event_id', 'country', 'created_at', 'id', 'status'],
    )
    op.drop_index('ix_registrations_event_created', table_name='registrations')
    op.drop_index('ix_registrations_event_status', table_name='registrations')
    op.drop_index('ix_registrations_event_country', table_name='registrations')
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the database's owner
        # may create it. Downgrade leaves it in place (other objects may use it).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            'ix_registrations_search_trgm',
            'registrations',
            list(SEARCHED),
            postgresql_using='gin',
            postgresql_ops={column: 'gin_trgm_ops' for column in SEARCHED},
        )
    else:
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_registrations_search_trgm', table_name='registrations')
    else:
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
    op.create_index('ix_registrations_event_country', 'registrations', ['event_id', 'country'])
    op.create_index('ix_registrations_event_status', 'registrations', ['event_id', 'status'])
    op.create_index('ix_registrations_event_created', 'registrations', ['event_id', 'created_at'])
    op.drop_index('ix_registrations_event_country_created', table_name='registrations')
    op.drop_index('ix_registrations_event_status_created', table_name='registrations')
    op.drop_index('ix_registrations_event_created_id', table_name='registrations')
