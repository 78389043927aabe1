"""The migrations and the models never drift."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.orm import Session

from matcher.db import Base, make_engine
from matcher.migrations import alembic_config, head_revision, schema_status, upgrade
from matcher.services.skills import find_skill


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_database_is_at_the_newest_migration(engine: Engine) -> None:
    status = schema_status(engine)
    assert status.reachable and status.current == head_revision() is not None


NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _rows_at_0005(connection: Connection) -> None:
    """Four alliances at revision 0005, when one taxonomy served them all.

    EMCA and OTHER both use 氩弧焊 (child of 焊接, alias TIG); only EMCA uses 数控车削 (alias
    数控车); THIRD uses nothing by id, but a training summary names 钎焊; nobody uses 嵌线; EMPTY
    has no people at all.
    """
    tables = MetaData()
    tables.reflect(connection)
    stamps = {"created_at": NOW, "updated_at": NOW}

    def add(table: str, *rows: dict[str, Any]) -> None:
        connection.execute(tables.tables[table].insert(), list(rows))

    add(
        "alliances",
        *(
            {"id": i, "code": code, "name": code, "timezone": "Asia/Shanghai"}
            | {"summary_every_days": 30, **stamps}
            for i, code in ((1, "EMCA"), (2, "OTHER"), (3, "THIRD"), (4, "EMPTY"))
        ),
    )
    add(
        "skills",
        {"id": 10, "name": "焊接", "key": "焊接", "parent_id": None, **stamps},
        {"id": 11, "name": "氩弧焊", "key": "氩弧焊", "parent_id": 10, **stamps},
        {"id": 12, "name": "钎焊", "key": "钎焊", "parent_id": 10, **stamps},
        {"id": 13, "name": "数控车削", "key": "数控车削", "parent_id": None, **stamps},
        {"id": 14, "name": "嵌线", "key": "嵌线", "parent_id": None, **stamps},
    )
    add(
        "skill_aliases",
        {"id": 1, "skill_id": 10, "name": "welding", "key": "welding"},
        {"id": 2, "skill_id": 11, "name": "TIG", "key": "tig"},
        {"id": 3, "skill_id": 13, "name": "数控车", "key": "数控车"},
    )
    add(
        "units",
        *(
            {
                "id": unit_id,
                "alliance_id": alliance_id,
                "code": f"U{unit_id}",
                "name": "u",
                **stamps,
            }
            for unit_id, alliance_id in ((1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3))
        ),
    )
    person = {"name": "p", "locale": "zh-CN", "active": True, **stamps}
    add(
        "craftsmen",
        *(
            {"id": i, "unit_id": unit, "external_id": f"C{i}", "honours": [], "capacity": 2}
            | person
            for i, unit in ((1, 1), (2, 3), (3, 5))
        ),
    )
    add(
        "apprentices",
        *(
            {"id": i, "unit_id": unit, "external_id": f"A{i}"} | person
            for i, unit in ((1, 2), (2, 4), (3, 6))
        ),
    )
    add(
        "craftsman_skills",
        {"craftsman_id": 1, "skill_id": 11, "level": 5, "position": 0},
        {"craftsman_id": 1, "skill_id": 13, "level": 4, "position": 1},
        {"craftsman_id": 2, "skill_id": 11, "level": 3, "position": 0},
    )
    add(
        "apprentice_wants",
        {"apprentice_id": 1, "skill_id": 10, "level": 3, "weight": 1.0, "position": 0},
        {"apprentice_id": 2, "skill_id": 11, "level": 4, "weight": 1.0, "position": 0},
    )
    add(
        "mentorships",
        {
            "id": 1,
            "alliance_id": 3,
            "craftsman_id": 3,
            "apprentice_id": 3,
            "started_on": date(2026, 1, 1),
            "summary_every_days": 30,
            "status": "active",
            "periods_filled": 1,
            **stamps,
        },
    )
    add(
        "training_summaries",
        {
            "mentorship_id": 1,
            "period_index": 1,
            "author": "craftsman",
            "content": "c",
            "hours": 2.0,
            "skills": ["钎焊", "自由文字"],
            "submitted_at": NOW,
            "submitted_by": "form",
        },
    )
    if connection.dialect.name == "postgresql":  # the ids above were given, not drawn
        for table in tables.sorted_tables:
            if "id" in table.c and table.c.id.primary_key:
                connection.execute(
                    text(  # the table's name from our own metadata
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                        f"(SELECT coalesce(max(id), 0) + 1 FROM {table.name}), false)"
                    )
                )


def _taxonomies(connection: Connection) -> dict[int, dict[str, tuple[str | None, list[str]]]]:
    """alliance id -> tag name -> (parent name, alias names), from the rows as stored."""
    rows = connection.execute(
        text("SELECT id, alliance_id, name, parent_id FROM skills ORDER BY id")
    ).all()
    by_id = {row.id: row for row in rows}
    aliases: dict[int, list[str]] = {}
    for alias in connection.execute(
        text("SELECT skill_id, alliance_id, name FROM skill_aliases ORDER BY name")
    ):
        assert alias.alliance_id == by_id[alias.skill_id].alliance_id
        aliases.setdefault(alias.skill_id, []).append(alias.name)
    taxonomies: dict[int, dict[str, tuple[str | None, list[str]]]] = {}
    for row in rows:
        parent = by_id[row.parent_id] if row.parent_id is not None else None
        assert parent is None or parent.alliance_id == row.alliance_id
        taxonomies.setdefault(row.alliance_id, {})[row.name] = (
            parent.name if parent else None,
            aliases.get(row.id, []),
        )
    return taxonomies


def _references(connection: Connection, *, per_alliance: bool = True) -> set[tuple[Any, ...]]:
    """(table, owner id, tag name, owner's alliance, tag's alliance) of every skill reference;
    without ``per_alliance`` (before 0007) the tag's alliance is None."""
    tag_alliance = "s.alliance_id" if per_alliance else "NULL"
    found: set[tuple[Any, ...]] = set()
    for table, owner, owners in (
        ("craftsman_skills", "craftsman_id", "craftsmen"),
        ("apprentice_wants", "apprentice_id", "apprentices"),
    ):
        found |= {
            (table, *row)
            for row in connection.execute(
                text(  # names from the test's own table list
                    f"SELECT t.{owner}, s.name, u.alliance_id, {tag_alliance} FROM {table} t "  # noqa: S608
                    f"JOIN skills s ON s.id = t.skill_id JOIN {owners} o ON o.id = t.{owner} "
                    "JOIN units u ON u.id = o.unit_id"
                )
            )
        }
    return found


def test_0007_gives_each_alliance_its_own_copy_of_the_tags_it_uses(bare_database_url: str) -> None:
    engine = make_engine(bare_database_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as connection:
            _rows_at_0005(connection)
        upgrade(engine, "0007")
        with engine.connect() as connection:
            assert _taxonomies(connection) == {
                1: {
                    "焊接": (None, ["welding"]),
                    "氩弧焊": ("焊接", ["TIG"]),
                    "数控车削": (None, ["数控车"]),
                    "嵌线": (None, []),  # used by nobody: every alliance keeps it
                },
                2: {"焊接": (None, ["welding"]), "氩弧焊": ("焊接", ["TIG"]), "嵌线": (None, [])},
                3: {"焊接": (None, ["welding"]), "钎焊": ("焊接", []), "嵌线": (None, [])},
                4: {"嵌线": (None, [])},
            }
            references = _references(connection)
            assert {(t, owner, name) for t, owner, name, _, _ in references} == {
                ("craftsman_skills", 1, "氩弧焊"),
                ("craftsman_skills", 1, "数控车削"),
                ("craftsman_skills", 2, "氩弧焊"),
                ("apprentice_wants", 1, "焊接"),
                ("apprentice_wants", 2, "氩弧焊"),
            }
            assert all(mine == tags for _, _, _, mine, tags in references)

        # The service reads each alliance's copy: its aliases resolve to its own tags.
        with Session(engine) as session:
            for alliance_id in (1, 2):
                tig = find_skill(session, "tig", alliance_id=alliance_id)
                assert tig is not None and tig.alliance_id == alliance_id
                assert tig.parent is not None and tig.parent.alliance_id == alliance_id
            assert find_skill(session, "数控车", alliance_id=2) is None

        command.downgrade(alembic_config(engine), "0005")
        with engine.connect() as connection:
            tags = connection.execute(
                text("SELECT s.name, p.name FROM skills s LEFT JOIN skills p ON p.id = s.parent_id")
            ).all()
            assert sorted(tags, key=str) == sorted(
                [
                    ("焊接", None),
                    ("氩弧焊", "焊接"),
                    ("钎焊", "焊接"),
                    ("数控车削", None),
                    ("嵌线", None),
                ],
                key=str,
            )
            aliases = connection.execute(text("SELECT key FROM skill_aliases")).scalars().all()
            assert sorted(aliases) == sorted(["welding", "tig", "数控车"])
            assert {
                (t, owner, name)
                for t, owner, name, *_ in _references(connection, per_alliance=False)
            } == {
                ("craftsman_skills", 1, "氩弧焊"),
                ("craftsman_skills", 1, "数控车削"),
                ("craftsman_skills", 2, "氩弧焊"),
                ("apprentice_wants", 1, "焊接"),
                ("apprentice_wants", 2, "氩弧焊"),
            }
    finally:
        engine.dispose()


def test_0010_gives_existing_pairs_the_default_term_and_goes_back(bare_database_url: str) -> None:
    engine = make_engine(bare_database_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as connection:
            _rows_at_0005(connection)
        upgrade(engine)
        with engine.connect() as connection:
            pair = connection.execute(
                text(
                    "SELECT ends_on, mid_term_on, goals, flagged, end_reason FROM mentorships"
                    " WHERE id = 1"
                )
            ).one()
            ends_on, mid_term_on = (
                value if isinstance(value, date) else date.fromisoformat(value)
                for value in pair[:2]
            )
            # Started 2026-01-01: the default 12-month agreement, asked for a check-in mid-way.
            assert (ends_on, mid_term_on) == (date(2027, 1, 1), date(2026, 7, 2))
            assert pair[2] in ([], "[]") and not pair[3] and pair[4] is None
            settings = connection.execute(
                text("SELECT agreement_months, idle_months FROM alliances WHERE id = 1")
            ).one()
            assert tuple(settings) == (12, 6)
        command.downgrade(alembic_config(engine), "0007")
        with engine.connect() as connection:
            columns = {
                row[1] if engine.dialect.name == "sqlite" else row[0]
                for row in connection.execute(
                    text("PRAGMA table_info(mentorships)")
                    if engine.dialect.name == "sqlite"
                    else text(
                        "SELECT column_name FROM information_schema.columns"
                        " WHERE table_name = 'mentorships'"
                    )
                )
            }
            assert "ends_on" not in columns and "started_on" in columns
        upgrade(engine)
        assert schema_status(engine).current == head_revision()
    finally:
        engine.dispose()
