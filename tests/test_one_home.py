"""Rules written once: pagination, an alliance's "today", SQLite's settings, the API prefix."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from matcher.api import API_PREFIX
from matcher.api.base import PageArgsSchema
from matcher.db import make_engine
from matcher.errors import NotFound
from matcher.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, page_count, page_offset
from matcher.rate_limits import SQLITE_BUSY_MS, _counter_engine
from matcher.services.mentorships import alliance_today
from tests import factories


@pytest.mark.parametrize(
    ("total", "size", "pages"), [(0, 50, 1), (1, 50, 1), (50, 50, 1), (51, 50, 2), (500, 7, 72)]
)
def test_page_count(total: int, size: int, pages: int) -> None:
    assert page_count(total, size) == pages


def test_page_offset() -> None:
    assert [page_offset(page, 50) for page in (1, 2, 3)] == [0, 50, 100]


def test_the_api_pages_by_the_same_sizes() -> None:
    schema = PageArgsSchema()
    assert schema.load({}) == {"page": 1, "page_size": DEFAULT_PAGE_SIZE}
    assert schema.load({"page_size": MAX_PAGE_SIZE})["page_size"] == MAX_PAGE_SIZE
    assert schema.validate({"page_size": MAX_PAGE_SIZE + 1})


def test_an_alliances_today_is_its_local_date(session: Session) -> None:
    alliance = factories.alliance(session, "EMCA", timezone="Asia/Shanghai")
    session.commit()
    evening_utc = datetime(2026, 1, 1, 17, 0, tzinfo=UTC)  # 01:00 on the 2nd in Shanghai
    assert alliance_today(session, alliance.id, evening_utc) == date(2026, 1, 2)
    with pytest.raises(NotFound):
        alliance_today(session, 2**31 - 1, evening_utc)


def _pragmas(engine_connect: object) -> tuple[int, str, int]:
    with engine_connect as connection:  # type: ignore[attr-defined]
        return (
            connection.exec_driver_sql("PRAGMA foreign_keys").scalar(),
            connection.exec_driver_sql("PRAGMA journal_mode").scalar(),
            connection.exec_driver_sql("PRAGMA busy_timeout").scalar(),
        )


def test_every_sqlite_connection_runs_with_the_services_settings(tmp_path: Path) -> None:
    """The app's engine and the rate limiter's: foreign keys on, WAL; each its own wait."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    app_engine, counter_engine = make_engine(url), _counter_engine(url)
    try:
        assert _pragmas(app_engine.connect()) == (1, "wal", 15_000)
        assert _pragmas(counter_engine.connect()) == (1, "wal", SQLITE_BUSY_MS)
    finally:
        app_engine.dispose()
        counter_engine.dispose()


def test_the_api_prefix_is_written_once() -> None:
    """Code names the prefix by ``API_PREFIX``; the literal is in matcher/api/__init__.py only
    (docstrings and messages for people aside)."""
    root = Path(__file__).resolve().parents[1] / "matcher"
    literal = '"' + API_PREFIX
    found = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if literal in path.read_text(encoding="utf-8") and path != root / "api" / "__init__.py"
    ]
    assert found == []
