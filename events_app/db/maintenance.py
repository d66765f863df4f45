"""Database upkeep an operator runs by hand (``events-app db compact``)."""

from __future__ import annotations

from sqlalchemy import pool
from sqlalchemy.ext.asyncio import create_async_engine

#: SQLite's attendee search index (FTS5) refers to registrations by rowid, which VACUUM may renumber
#: (the table has no INTEGER PRIMARY KEY); 'rebuild' reads it again from the registrations.
_SQLITE_COMPACT = ("VACUUM", "INSERT INTO registrations_search(registrations_search) VALUES ('rebuild')")


async def compact(database_url: str) -> bool:
    """On SQLite: give freed pages back to the file system and rebuild the attendee search index; returns
    whether anything was done (PostgreSQL's autovacuum does this work by itself)."""
    engine = create_async_engine(database_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        if engine.dialect.name != "sqlite":
            return False
        async with engine.connect() as connection:
            for statement in _SQLITE_COMPACT:
                await connection.exec_driver_sql(statement)
        return True
    finally:
        await engine.dispose()
