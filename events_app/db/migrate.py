"""Alembic, driven from code so that the CLI, the tests and the Dockerfile share one path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advanced_alchemy.types import GUID
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.types import TypeEngine

from events_app.db.models.registration import POSTGRESQL_ONLY_INDEXES, SQLITE_SEARCH_TABLES
from events_app.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations (blocking: call it from a thread when an event loop is running)."""
    command.upgrade(alembic_config(database_url), revision)


def autogenerate(database_url: str, message: str) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


def compare_type(
    context: MigrationContext,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    """Alembic's type comparison, minus a false alarm: SQLite reflects GUID's BINARY(16) as NUMERIC."""
    if context.dialect.name == "sqlite" and isinstance(metadata_type, GUID):
        return False
    return None


IncludeObject = Callable[[Any, str | None, str, bool, Any], bool]


def include_object_on(dialect_name: str) -> IncludeObject:
    """Alembic's ``include_object`` for one database: leaves out of comparisons what the models cannot
    describe there (SQLite's FTS5 search tables) or create there (PostgreSQL's trigram index)."""

    def include(_object: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        if type_ == "table" and name in SQLITE_SEARCH_TABLES:
            return False
        return not (type_ == "index" and name in POSTGRESQL_ONLY_INDEXES and dialect_name != "postgresql")

    return include
