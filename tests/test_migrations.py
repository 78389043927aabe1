"""The migrations and the models never drift."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from matcher.db import Base
from matcher.migrations import head_revision, schema_status


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_database_is_at_the_newest_migration(engine: Engine) -> None:
    status = schema_status(engine)
    assert status.reachable and status.current == head_revision() is not None
