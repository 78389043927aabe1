"""The activity assessment (programme.md): figures per craftsman and unit computed by the
database, the same in the XLSX workbook, and the idle ones marked for review."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import update
from sqlalchemy.orm import Session

from matcher.models import CheckIn, TrainingSummary
from matcher.services.mentorships import SummaryInput, add_summary
from matcher.services.programme import CheckInInput, add_check_in, assess, end_pair
from tests import factories
from tests.factories import World

API = "/api/v1"
FIRST, LAST = date(2026, 1, 1), date(2026, 6, 30)


def _at_shanghai(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=8)


def _summary(session: Session, mentorship: Any, handed_in: datetime, hours: float) -> None:
    row = add_summary(
        session,
        mentorship=mentorship,
        summary=SummaryInput(author="apprentice", content="总结", hours=hours, skills=[]),
        submitted_by="test",
    )
    session.execute(
        update(TrainingSummary).where(TrainingSummary.id == row.id).values(submitted_at=handed_in)
    )


def _check_in(session: Session, mentorship: Any, at: datetime, rating: int, author: str) -> None:
    row = add_check_in(
        session,
        mentorship=mentorship,
        check_in=CheckInInput(author=author, rating=rating, good_fit=True),
        submitted_by="test",
    )
    session.execute(update(CheckIn).where(CheckIn.id == row.id).values(submitted_at=at))


def _due_in_period(started: date, every: int, until: date) -> int:
    """Summary periods due within [FIRST, until], counted one by one."""
    return sum(1 for k in range(1, 500) if FIRST <= started + timedelta(days=k * every) <= until)


def _arrange(session: Session, world: World) -> dict[str, Any]:
    running = factories.mentorship(
        session, world.sibling_unit, world.unit, date(2026, 1, 31), "RUN"
    )
    # Period 1 (due 03-02) handed in on 02-28; period 2 (due 04-01) on 04-01 at 23:30 local
    # time (on time: the alliance's date, though UTC already says 04-01 15:30... still the 1st),
    # period 3 (due 05-01) on 05-02 (late).
    _summary(session, running, _at_shanghai(date(2026, 2, 28), 10), 6)
    _summary(session, running, _at_shanghai(date(2026, 4, 1), 23), 4)
    _summary(session, running, _at_shanghai(date(2026, 5, 2), 0), 2.5)
    _check_in(session, running, _at_shanghai(date(2026, 3, 10), 9), 4, "craftsman")
    _check_in(session, running, _at_shanghai(date(2026, 3, 11), 9), 2, "apprentice")
    # Ended early, as not a fit, on 02-15: periods after that are not due.
    ended = factories.mentorship(session, world.sibling_unit, world.unit, date(2025, 11, 1), "END")
    end_pair(
        session,
        mentorship=ended,
        reason_code="not_a_fit",
        comment=None,
        today=date(2026, 2, 15),
        actor="test",
    )
    # Completed by a passed assessment on 03-01, a summary handed in before (in 2025: not in
    # the period's hours).
    completed = factories.mentorship(
        session, world.unit, world.sibling_unit, date(2025, 3, 1), "DONE"
    )
    _summary(session, completed, _at_shanghai(date(2025, 3, 30), 9), 8)
    assess(
        session,
        mentorship=completed,
        fields={
            "theory": 90,
            "practice": 88,
            "skills": [{"name": "氩弧焊", "level": 4}],
            "evaluator": "考核组",
            "result": "pass",
            "comment": None,
        },
        today=date(2026, 3, 1),
        actor="test",
    )
    session.commit()
    return {"running": running, "ended": ended, "completed": completed}


def _get(client: FlaskClient, world: World, suffix: str = "") -> Any:
    return client.get(
        f"{API}/alliances/{world.alliance.id}/activity{suffix}?from={FIRST}&to={LAST}",
        headers=world.auth("coordinator"),
    )


FIGURE_NAMES = (
    "active",
    "completed",
    "ended",
    "summaries_due",
    "summaries_on_time",
    "summaries_late",
    "hours",
    "apprentices_passed",
    "mean_rating",
    "idle",
)


def test_the_figures_per_craftsman_and_unit(
    client: FlaskClient, session: Session, world: World
) -> None:
    pairs = _arrange(session, world)
    response = _get(client, world)
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert (report["from"], report["to"], report["idle_months"]) == (
        FIRST.isoformat(),
        LAST.isoformat(),
        6,
    )
    by_name = {
        row["craftsman"]["name"]: {name: row[name] for name in FIGURE_NAMES}
        for row in report["craftsmen"]
    }
    assert by_name["师傅RUN"] == {
        "active": 1,
        "completed": 0,
        "ended": 0,
        "summaries_due": _due_in_period(date(2026, 1, 31), 30, LAST),
        "summaries_on_time": 2,
        "summaries_late": _due_in_period(date(2026, 1, 31), 30, LAST) - 2,
        "hours": 12.5,
        "apprentices_passed": 0,
        "mean_rating": 3.0,
        "idle": False,
    }
    assert by_name["师傅END"] == {
        "active": 1,
        "completed": 0,
        "ended": 1,
        "summaries_due": _due_in_period(date(2025, 11, 1), 30, date(2026, 2, 15)),
        "summaries_on_time": 0,
        "summaries_late": _due_in_period(date(2025, 11, 1), 30, date(2026, 2, 15)),
        "hours": 0.0,
        "apprentices_passed": 0,
        "mean_rating": None,
        "idle": True,  # nothing running at the end of the period, no summary for 6 months
    }
    assert by_name["师傅DONE"] == {
        "active": 1,
        "completed": 1,
        "ended": 0,
        "summaries_due": _due_in_period(date(2025, 3, 1), 30, date(2026, 3, 1)),
        "summaries_on_time": 0,
        "summaries_late": _due_in_period(date(2025, 3, 1), 30, date(2026, 3, 1)),
        "hours": 0.0,
        "apprentices_passed": 1,
        "mean_rating": None,
        "idle": True,
    }
    # The world's own craftsmen never had a pair: idle. The foreign alliance's are not listed.
    assert by_name[f"工匠C-{world.unit.code}"]["idle"] is True
    assert f"工匠C-{world.foreign_unit.code}" not in by_name
    units = {row["unit"]["code"]: row for row in report["units"]}
    assert set(units) == {world.unit.code, world.sibling_unit.code}
    sibling = units[world.sibling_unit.code]
    assert (sibling["craftsmen"], sibling["idle_craftsmen"], sibling["idle"]) == (3, 2, False)
    assert sibling["hours"] == 12.5 and sibling["ended"] == 1 and sibling["mean_rating"] == 3.0
    home = units[world.unit.code]
    assert (home["craftsmen"], home["idle_craftsmen"], home["idle"]) == (2, 2, True)
    assert home["apprentices_passed"] == 1
    assert pairs["running"].id  # the arranged pairs exist


def test_the_workbook_reads_back_to_the_same_figures(
    client: FlaskClient, session: Session, world: World
) -> None:
    _arrange(session, world)
    report = _get(client, world).get_json()
    response = _get(client, world, ".xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(response.get_data()))
    assert book.sheetnames == ["工匠", "单位", "说明"]
    sheet = list(book["工匠"].iter_rows(values_only=True))
    assert sheet[0][:4] == ("工匠", "工号", "单位", "在带师徒数")
    expected = [
        (
            row["craftsman"]["name"],
            row["craftsman"]["external_id"],
            row["unit"]["name"],
            *(row[name] for name in FIGURE_NAMES[:-1]),
            "是" if row["idle"] else "否",
        )
        for row in report["craftsmen"]
    ]
    assert sheet[1:] == expected
    units = list(book["单位"].iter_rows(values_only=True))
    assert [(r[1], r[2], r[3]) for r in units[1:]] == [
        (row["unit"]["code"], row["craftsmen"], row["idle_craftsmen"]) for row in report["units"]
    ]


def test_a_period_that_makes_no_sense_is_refused(client: FlaskClient, world: World) -> None:
    url = f"{API}/alliances/{world.alliance.id}/activity"
    backwards = client.get(
        f"{url}?from=2026-06-30&to=2026-01-01", headers=world.auth("coordinator")
    )
    assert backwards.status_code == 422 and "to" in backwards.get_json()["errors"]
    missing = client.get(f"{url}?from=2026-01-01", headers=world.auth("coordinator"))
    assert missing.status_code == 422
    too_long = client.get(f"{url}?from=2020-01-01&to=2026-01-01", headers=world.auth("coordinator"))
    assert too_long.status_code == 422
