"""Migration 0014: alliances that existed before consent keep matching everyone (consent not
required) until a coordinator turns it on; new alliances require it."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.orm import Session

from matcher.db import make_engine
from matcher.migrations import alembic_config, head_revision, schema_status, upgrade
from matcher.models import Craftsman
from matcher.services.alliances import create_alliance
from tests.test_migrations import _rows_at_0005


def test_existing_alliances_are_migrated_without_the_requirement_new_ones_with_it(
    bare_database_url: str,
) -> None:
    engine = make_engine(bare_database_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as connection:
            _rows_at_0005(connection)
        upgrade(engine)
        with engine.connect() as connection:
            settings = connection.execute(
                text("SELECT code, consent_required, consent_notice_version FROM alliances")
            ).all()
            assert sorted((code, bool(on), version) for code, on, version in settings) == [
                ("EMCA", False, "1"),
                ("EMPTY", False, "1"),
                ("OTHER", False, "1"),
                ("THIRD", False, "1"),
            ]
            pair = connection.execute(text("SELECT consent_withdrawn_at FROM mentorships")).one()
            assert pair[0] is None
        with Session(engine) as session:
            assert {c.cross_unit_consent_at for c in session.query(Craftsman)} == {None}
            made = create_alliance(session, fields={"code": "NEW", "name": "新联盟"})
            session.commit()
            assert made.consent_required is True
        with engine.begin() as connection:  # a row written without the column: the default
            connection.execute(
                text(
                    "INSERT INTO alliances (code, name, timezone, summary_every_days, created_at,"
                    " updated_at) VALUES ('RAW', 'raw', 'Asia/Shanghai', 30, :now, :now)"
                ),
                {"now": "2026-12-01 00:00:00"},
            )
            raw = connection.execute(
                text("SELECT consent_required FROM alliances WHERE code = 'RAW'")
            ).scalar_one()
            assert bool(raw) is True
        command.downgrade(alembic_config(engine), "0011")
        with engine.connect() as connection:
            assert "consent_required" not in _columns(connection, "alliances")
            assert "cross_unit_consent_at" not in _columns(connection, "craftsmen")
        upgrade(engine)
        assert schema_status(engine).current == head_revision()
    finally:
        engine.dispose()


def _columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns(table)}
