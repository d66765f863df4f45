"""An ``INSERT ... ON CONFLICT DO NOTHING`` that SQLAlchemy 2.0 compiles once, not on every call.

The dialects' own ``insert().on_conflict_do_nothing()`` (PostgreSQL and SQLite) opt out of
SQLAlchemy's compiled-statement cache (``inherit_cache = False`` in 2.0), so a hot statement built
with them is compiled again on every execution: about a millisecond of CPU for a 25-column INSERT.
Without a conflict target the clause has nothing to vary, and both databases spell it the same, so
a fixed SQL fragment in the standard INSERT's place for it keeps the statement cacheable.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.dml import Insert

_ON_CONFLICT_DO_NOTHING = sa.text("ON CONFLICT DO NOTHING")


class InsertSkippingConflicts(Insert):
    """``INSERT ... ON CONFLICT DO NOTHING`` (any unique index or constraint), PostgreSQL and SQLite.

    A row refused by a unique index is skipped without an error: with ``RETURNING``, no row back.
    """

    inherit_cache = True  # what varies is the standard INSERT's; the clause is one fixed text

    def __init__(self, table: sa.Table) -> None:
        super().__init__(table)
        self._post_values_clause = _ON_CONFLICT_DO_NOTHING


def insert_skipping_conflicts(table: sa.Table) -> InsertSkippingConflicts:
    return InsertSkippingConflicts(table)
