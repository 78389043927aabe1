"""Alembic migrations, run by ``matcher db upgrade``; the scripts live in ``versions/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

HERE = Path(__file__).parent


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config, bound to ``engine`` for running migrations (env.py uses it)."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def head_revision() -> str | None:
    """The newest migration in the package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database's schema stands against the package's migrations."""

    reachable: bool
    current: str | None
    head: str | None
    detail: str = ""


def schema_status(engine: Engine) -> SchemaStatus:
    """Ask the database for its migration revision."""
    head = head_revision()
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        return SchemaStatus(False, None, head, f"Database unreachable: {type(exc).__name__}.")
    return SchemaStatus(True, current, head)
