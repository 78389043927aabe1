"""The activity assessment (``services.activity.activity``) over 100,000 mentorships and a year
of training summaries, on PostgreSQL.

Creates a scratch database, migrates it and loads (COPY) one alliance (Asia/Shanghai, 12 units,
a craftsman for every 4 apprentices) with 100,000 mentorships started over the past 400 days,
cadence 30 days: 80 % active, 10 % ended early, 10 % completed by a passed assessment; each pair's
summaries handed in around their due dates (some late, some missing), about a year of them, and
a check-in for half the pairs. Then it times the assessment of the last 365 days (the SQL, twice:
cold and warm) and the naive way on the same data: for each craftsman, its mentorships, then each
mentorship's summaries, check-ins and assessment loaded through the ORM and counted in Python.
The naive way runs over the first ``--naive-craftsmen`` craftsmen (default 1,000) and is
extrapolated linearly; its figures are checked equal to the SQL's for them.

    .venv/bin/python bench/activity.py [--mentorships 100000] [--naive-craftsmen 1000] [--sqlite]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from reminders import bulk_load
from scratch import scratch_database
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from matcher.db import make_engine, make_session_factory
from matcher.migrations import upgrade
from matcher.models import (
    Alliance,
    Apprentice,
    Assessment,
    CheckIn,
    Craftsman,
    Mentorship,
    TrainingSummary,
)
from matcher.services.activity import activity, day_number
from matcher.services.alliances import create_alliance, create_unit
from matcher.services.mentorships import add_months, mid_term

TIMEZONE = "Asia/Shanghai"
ZONE = ZoneInfo(TIMEZONE)
CADENCE = 30
UNITS = 12
PER_CRAFTSMAN = 4
TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 9, tzinfo=ZONE).astimezone(UTC)
FIRST, LAST = TODAY - timedelta(days=364), TODAY


def _person(prefix: str, index: int, unit_id: int) -> dict[str, Any]:
    return {
        "id": index + 1,
        "unit_id": unit_id,
        "external_id": f"{prefix}-{index:06}",
        "name": f"{prefix}{index}",
        "email": None,
        "locale": "zh-CN",
        "region": None,
        "active": True,
        "created_at": NOW,
        "updated_at": NOW,
    }


def load(factory: sessionmaker[Session], n: int) -> tuple[int, dict[str, int]]:
    """The alliance and its data; its id and how many rows of each kind."""
    rng = random.Random(14)
    with factory() as session:
        alliance = create_alliance(
            session,
            fields={"code": "BENCH", "name": "长三角电机工匠联盟", "timezone": TIMEZONE},
        )
        units = [
            create_unit(session, alliance=alliance, fields={"code": f"U{u:02}", "name": f"U{u}"}).id
            for u in range(UNITS)
        ]
        n_craftsmen = -(-n // PER_CRAFTSMAN)
        bulk_load(
            session,
            Craftsman,
            [
                {**_person("C", i, units[i % UNITS]), "capacity": 4, "honours": []}
                for i in range(n_craftsmen)
            ],
        )
        bulk_load(
            session,
            Apprentice,
            [_person("A", i, units[(i // PER_CRAFTSMAN + 1) % UNITS]) for i in range(n)],
        )
        mentorships: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        check_ins: list[dict[str, Any]] = []
        assessments: list[dict[str, Any]] = []
        for i in range(n):
            started = TODAY - timedelta(days=rng.randint(1, 400))
            ends_on = add_months(started, 12)
            fate = rng.random()
            status, ended_on = "active", None
            if fate < 0.2:
                ended_on = started + timedelta(days=rng.randint(1, max(1, (TODAY - started).days)))
                status = "ended" if fate < 0.1 else "completed"
            until = ended_on or TODAY
            filled = 0
            for k in range(1, 20):
                due = started + timedelta(days=k * CADENCE)
                if due > until or rng.random() < 0.08:  # the pair stopped handing in
                    break
                handed = due + timedelta(days=rng.choice([-3, -1, 0, 0, 1, 4]))
                if handed > until:
                    break
                filled = k
                summaries.append(
                    {
                        "id": len(summaries) + 1,
                        "mentorship_id": i + 1,
                        "period_index": k,
                        "author": "apprentice",
                        "content": "总结",
                        "hours": float(rng.randint(2, 12)),
                        "skills": [],
                        "submitted_at": datetime.combine(
                            handed, datetime.min.time(), ZONE
                        ).astimezone(UTC)
                        + timedelta(hours=rng.randint(8, 22)),
                        "submitted_by": "bench",
                    }
                )
            mentorships.append(
                {
                    "id": i + 1,
                    "alliance_id": alliance.id,
                    "craftsman_id": i // PER_CRAFTSMAN + 1,
                    "apprentice_id": i + 1,
                    "started_on": started,
                    "summary_every_days": CADENCE,
                    "status": status,
                    "ended_on": ended_on,
                    "periods_filled": filled,
                    "next_due_on": None
                    if ended_on
                    else started + timedelta(days=(filled + 1) * CADENCE),
                    "ends_on": ends_on,
                    "mid_term_on": mid_term(started, ends_on),
                    "goals": [],
                    "flagged": False,
                    "end_reason": "not_a_fit" if status == "ended" else None,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            if rng.random() < 0.5:
                check_ins.append(
                    {
                        "id": len(check_ins) + 1,
                        "mentorship_id": i + 1,
                        "occasion": "first_summary",
                        "author": "craftsman",
                        "rating": rng.randint(1, 5),
                        "good_fit": True,
                        "submitted_at": datetime.combine(
                            started + timedelta(days=35), datetime.min.time(), ZONE
                        ).astimezone(UTC),
                        "submitted_by": "bench",
                    }
                )
            if status == "completed":
                assessments.append(
                    {
                        "id": len(assessments) + 1,
                        "mentorship_id": i + 1,
                        "theory": 80,
                        "practice": 85,
                        "skills": [],
                        "evaluator": "bench",
                        "result": "pass",
                        "assessed_on": ended_on,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                )
        bulk_load(session, Mentorship, mentorships)
        bulk_load(session, TrainingSummary, summaries)
        bulk_load(session, CheckIn, check_ins)
        bulk_load(session, Assessment, assessments)
        session.commit()
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE"))  # as autovacuum would after a load this size
            session.commit()
        counts = {
            "craftsmen": n_craftsmen,
            "mentorships": n,
            "summaries": len(summaries),
            "check_ins": len(check_ins),
            "assessments": len(assessments),
        }
        return alliance.id, counts


def naive(session: Session, alliance: Alliance, craftsman_ids: list[int]) -> dict[int, dict]:
    """The obvious ORM code: per craftsman, per mentorship, per summary, in Python."""
    offset = ZoneInfo(alliance.timezone).utcoffset(datetime(LAST.year, LAST.month, LAST.day))
    assert offset is not None
    result: dict[int, dict[str, Any]] = {}
    for craftsman_id in craftsman_ids:
        row = dict.fromkeys(
            ("active", "completed", "ended", "summaries_due", "summaries_on_time"), 0
        )
        hours, ratings = 0.0, []
        passed = 0
        for m in session.scalars(select(Mentorship).where(Mentorship.craftsman_id == craftsman_id)):
            if m.started_on > LAST:
                continue
            ran = m.ended_on is None or m.ended_on >= FIRST
            upper = min(LAST, m.ended_on) if m.ended_on else LAST
            if ran:
                row["active"] += 1
                row["summaries_due"] += sum(
                    1
                    for k in range(1, 100)
                    if FIRST <= m.started_on + timedelta(days=k * m.summary_every_days) <= upper
                )
            if m.ended_on and FIRST <= m.ended_on <= LAST:
                row["completed" if m.status == "completed" else "ended"] += 1
            for s in session.scalars(
                select(TrainingSummary).where(TrainingSummary.mentorship_id == m.id)
            ):
                handed = (s.submitted_at + offset).date()
                due = m.started_on + timedelta(days=s.period_index * m.summary_every_days)
                if FIRST <= due <= upper and handed <= due:
                    row["summaries_on_time"] += 1
                if FIRST <= handed <= LAST:
                    hours += s.hours
            for c in session.scalars(select(CheckIn).where(CheckIn.mentorship_id == m.id)):
                if FIRST <= (c.submitted_at + offset).date() <= LAST:
                    ratings.append(c.rating)
            a = session.scalars(
                select(Assessment).where(Assessment.mentorship_id == m.id)
            ).one_or_none()
            if a is not None and a.result == "pass" and FIRST <= a.assessed_on <= LAST:
                passed += 1
        row["hours"] = round(hours, 2)
        row["apprentices_passed"] = passed
        row["mean_rating"] = round(sum(ratings) / len(ratings), 2) if ratings else None
        result[craftsman_id] = row
    return result


def run(backend: str, n: int, naive_craftsmen: int) -> None:
    with scratch_database(backend) as url:
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
        started = time.perf_counter()
        alliance_id, counts = load(factory, n)
        loaded = time.perf_counter() - started
        timings = []
        with factory() as session:
            alliance = session.get_one(Alliance, alliance_id)
            for _ in range(2):
                started = time.perf_counter()
                report = activity(session, alliance=alliance, first=FIRST, last=LAST)
                timings.append(time.perf_counter() - started)
            ids = sorted(row["craftsman"]["id"] for row in report["craftsmen"])[:naive_craftsmen]
            started = time.perf_counter()
            slow = naive(session, alliance, ids)
            naive_seconds = time.perf_counter() - started
        engine.dispose()
    keys = list(next(iter(slow.values())))
    fast = {
        row["craftsman"]["id"]: {k: row[k] for k in keys}
        for row in report["craftsmen"]
        if row["craftsman"]["id"] in slow
    }
    wrong = [(i, fast[i], slow[i]) for i in slow if fast[i] != slow[i]]
    assert not wrong, f"the SQL and the naive way disagree: {wrong[:3]}"
    scale = counts["craftsmen"] / len(ids)
    extrapolated = naive_seconds * scale
    print(
        f"\n{backend}: activity assessment {FIRST}..{LAST} (day numbers "
        f"{day_number(FIRST)}..{day_number(LAST)}) over {counts['mentorships']:,} mentorships, "
        f"{counts['summaries']:,} summaries, {counts['check_ins']:,} check-ins, "
        f"{counts['assessments']:,} assessments, {counts['craftsmen']:,} craftsmen "
        f"(loaded in {loaded:.1f} s)"
    )
    print(
        f"  SQL (craftsmen and units): cold {timings[0]:.2f} s, warm {timings[1]:.2f} s; "
        f"{len(report['craftsmen']):,} craftsmen, {len(report['units'])} units"
    )
    print(
        f"  naive ORM loop: {naive_seconds:.2f} s for the first {len(ids):,} craftsmen "
        f"(same figures) -> {extrapolated:.1f} s extrapolated x{scale:g}; "
        f"SQL warm is {extrapolated / timings[1]:.0f}x faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mentorships", type=int, default=100_000)
    parser.add_argument("--naive-craftsmen", type=int, default=1_000)
    parser.add_argument("--sqlite", action="store_true", help="also run it on a SQLite file")
    args = parser.parse_args()
    for backend in ["postgresql", "sqlite"] if args.sqlite else ["postgresql"]:
        run(backend, args.mentorships, args.naive_craftsmen)


if __name__ == "__main__":
    main()
