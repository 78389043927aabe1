"""The ``reminders`` scan (``queue_reminders``) over 100,000 active mentorships, on PostgreSQL.

Creates a scratch database, migrates it and loads, set-based (multi-row INSERTs in batches), one
alliance (Asia/Shanghai, 12 units, a craftsman for every 4 apprentices, 3 coordinators) with
100,000 active mentorships started over the past 400 days, cadence 30 days, and a consistent summary
cycle (``next_due_on = started_on + (periods_filled + 1) * 30``): most pairs are up to date, some
are one or more periods behind. Then it times

1. the first scan at a fixed ``now`` (queues everything due, checked against the generated data),
2. the same scan again (queues nothing: the database's unique keys),
3. a scan one day later (that day's new upcoming / overdue / escalation rows),

and the naive way on the same data and ``now`` with the outbox emptied again: a Python loop over
ORM mentorships computing each due date and kind in Python, checking and inserting each reminder
row one by one. By default the naive way runs over the first 10,000 mentorships and its time is
extrapolated linearly to all of them (``--naive-n`` to change; the output says which).

    .venv/bin/python bench/reminders.py [--mentorships 100000] [--naive-n 10000] [--sqlite]

``--sqlite`` runs the same after the PostgreSQL run on a SQLite file, for comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from scratch import scratch_database
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from matcher.db import make_engine, make_session_factory
from matcher.migrations import upgrade
from matcher.models import (
    Alliance,
    Apprentice,
    Craftsman,
    Mentorship,
    Reminder,
    Unit,
    User,
)
from matcher.services.alliances import create_alliance, create_unit
from matcher.services.mentorships import add_months, local_today, mid_term
from matcher.services.programme_reminders import queue_programme_reminders
from matcher.services.reminders import ESCALATE_AFTER_DAYS, REMIND_DAYS_BEFORE, queue_reminders
from matcher.services.users import create_user

TIMEZONE = "Asia/Shanghai"
CADENCE = 30
UNITS = 12
COORDINATORS = 3
APPRENTICES_PER_CRAFTSMAN = 4
BATCH = 10_000
# The hourly job's run on a Monday morning, local time.
NOW = datetime(2026, 6, 15, 9, 5, tzinfo=ZoneInfo(TIMEZONE)).astimezone(UTC)
KINDS = ("upcoming", "overdue", "escalation")


@dataclass
class Loaded:
    """What was loaded, and how many pairs each reminder window holds at ``NOW``."""

    alliance_id: int
    mentorships: int
    craftsmen: int
    seconds: float
    pairs: Counter[str] = field(default_factory=Counter)


def bulk_load(session: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Rows with ids into an empty table: COPY on PostgreSQL, batched executemany on SQLite."""
    table = model.__table__
    columns = list(rows[0])
    if session.get_bind().dialect.name != "postgresql":
        for start in range(0, len(rows), BATCH):
            session.execute(table.insert(), list(rows[start : start + BATCH]))
        return
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(
                [json.dumps(v) if isinstance(v, list | dict) else v for v in row.values()]
            )
    # The ids were given: move the table's sequence past them.
    session.execute(
        # The table's name comes from our own metadata, never from input.
        text(f"SELECT setval(pg_get_serial_sequence(:table, 'id'), max(id)) FROM {table.name}"),  # noqa: S608
        {"table": table.name},
    )


def _person(kind: str, index: int, unit_id: int, rng: random.Random) -> dict[str, Any]:
    prefix = "C" if kind == "craftsman" else "A"
    return {
        "id": index + 1,
        "unit_id": unit_id,
        "external_id": f"{prefix}-{index:06}",
        "name": f"{'工匠' if kind == 'craftsman' else '学徒'}{index}号",
        "email": f"{prefix.lower()}{index}@u{unit_id}.example.cn",
        "locale": "en" if rng.random() < 0.1 else "zh-CN",
        "region": rng.choice(["杭州", "湘潭", "哈尔滨", "西安", "上海"]),
        "active": True,
        "created_at": NOW,
        "updated_at": NOW,
    }


def _cycle(started_on: date, today: date, rng: random.Random) -> tuple[int, date]:
    """``periods_filled`` and ``next_due_on`` of a pair: most up to date, some behind."""
    passed = max(0, ((today - started_on).days - 1) // CADENCE)  # periods due before today
    behind = rng.choices([0, 1, 2, 3, 4, 6], weights=[82, 10, 4, 2, 1, 1])[0]
    filled = passed - min(behind, passed)
    return filled, started_on + timedelta(days=(filled + 1) * CADENCE)


def load(factory: sessionmaker[Session], n: int) -> Loaded:
    """The alliance, its people and ``n`` active mentorships (ids 1.., the tables being empty)."""
    rng = random.Random(2026)
    today = local_today(TIMEZONE, NOW)
    started = time.perf_counter()
    with factory() as session:
        alliance = create_alliance(
            session,
            fields={
                "code": "BENCH",
                "name": "长三角电机工匠联盟",
                "timezone": TIMEZONE,
                "summary_every_days": CADENCE,
            },
        )
        units = [
            create_unit(
                session,
                alliance=alliance,
                fields={
                    "code": f"U{u:02}",
                    "name": f"第{u}电机有限公司",
                    "contact_email": f"hr@u{u:02}.example.cn",
                },
            ).id
            for u in range(UNITS)
        ]
        for c in range(COORDINATORS):
            create_user(
                session,
                email=f"coordinator{c}@bench.example.cn",
                password="bench-password",
                alliance=alliance,
                locale="en" if c == 0 else "zh-CN",
            )
        n_craftsmen = -(-n // APPRENTICES_PER_CRAFTSMAN)
        bulk_load(
            session,
            Craftsman,
            [
                {**_person("craftsman", i, units[i % UNITS], rng), "capacity": 4, "honours": []}
                for i in range(n_craftsmen)
            ],
        )
        # Mentorship i pairs craftsman i // 4 with apprentice i, always of another unit.
        apprentice_units = [
            units[((i // APPRENTICES_PER_CRAFTSMAN) % UNITS + 1 + i % (UNITS - 1)) % UNITS]
            for i in range(n)
        ]
        bulk_load(
            session,
            Apprentice,
            [_person("apprentice", i, apprentice_units[i], rng) for i in range(n)],
        )
        loaded = Loaded(alliance.id, n, n_craftsmen, 0.0)
        rows: list[dict[str, Any]] = []
        for i in range(n):
            started_on = today - timedelta(days=rng.randint(1, 400))
            filled, next_due = _cycle(started_on, today, rng)
            last = None
            if filled:
                handed_in = started_on + timedelta(days=filled * CADENCE - rng.randint(0, 5))
                last = datetime.combine(handed_in, clock(16), ZoneInfo(TIMEZONE))
            rows.append(
                {
                    "id": i + 1,
                    "alliance_id": alliance.id,
                    "craftsman_id": i // APPRENTICES_PER_CRAFTSMAN + 1,
                    "apprentice_id": i + 1,
                    "started_on": started_on,
                    "summary_every_days": CADENCE,
                    "status": "active",
                    "periods_filled": filled,
                    "next_due_on": next_due,
                    "last_summary_at": last,
                    "ends_on": add_months(started_on, 12),
                    "mid_term_on": mid_term(started_on, add_months(started_on, 12)),
                    "goals": [],
                    "flagged": False,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
            if today <= next_due <= today + timedelta(days=REMIND_DAYS_BEFORE):
                loaded.pairs["upcoming"] += 1
            if next_due < today:
                loaded.pairs["overdue"] += 1
            if next_due <= today - timedelta(days=ESCALATE_AFTER_DAYS):
                loaded.pairs["escalation"] += 1
        bulk_load(session, Mentorship, rows)
        session.commit()
        # As autovacuum would after a load this size: the planner needs the tables' statistics.
        session.execute(text("ANALYZE"))
        session.commit()
    loaded.seconds = time.perf_counter() - started
    return loaded


def timed_scan(factory: sessionmaker[Session], now: datetime) -> tuple[dict[str, int], float]:
    """One ``reminders`` job run: the set-based scan and its commit."""
    with factory() as session:
        started = time.perf_counter()
        counts = queue_reminders(session, now=now)
        session.commit()
        return counts, time.perf_counter() - started


def naive_scan(session: Session, now: datetime, limit: int) -> dict[str, int]:
    """The obvious ORM code: every active mentorship, due date and kinds in Python, row by row."""
    counts = dict.fromkeys(KINDS, 0)
    mentorships = session.scalars(
        select(Mentorship).where(Mentorship.status == "active").order_by(Mentorship.id).limit(limit)
    ).all()
    for m in mentorships:
        alliance = session.get_one(Alliance, m.alliance_id)
        today = local_today(alliance.timezone, now)
        period = m.periods_filled + 1
        due = m.started_on + timedelta(days=period * m.summary_every_days)
        kinds: list[str] = []
        if today <= due <= today + timedelta(days=REMIND_DAYS_BEFORE):
            kinds.append("upcoming")
        if due < today:
            kinds.append("overdue")
        if due <= today - timedelta(days=ESCALATE_AFTER_DAYS):
            kinds.append("escalation")
        for kind in kinds:
            recipients: list[tuple[str, str, str]] = []
            if kind == "escalation":
                for user in session.scalars(
                    select(User).where(User.alliance_id == m.alliance_id, User.active.is_(True))
                ):
                    recipients.append((user.email, "coordinator", user.locale))
                for person in (m.craftsman, m.apprentice):
                    unit = session.get_one(Unit, person.unit_id)
                    if unit.contact_email:
                        recipients.append((unit.contact_email, "unit", "zh-CN"))
            else:
                for role, person in (("craftsman", m.craftsman), ("apprentice", m.apprentice)):
                    if person.email:
                        recipients.append((person.email, role, person.locale))
            for recipient, role, locale in recipients:
                exists = session.scalar(
                    select(Reminder.id).where(
                        Reminder.mentorship_id == m.id,
                        Reminder.period_index == period,
                        Reminder.kind == kind,
                        Reminder.recipient == recipient,
                    )
                )
                if exists is not None:
                    continue
                session.add(
                    Reminder(
                        alliance_id=m.alliance_id,
                        mentorship_id=m.id,
                        period_index=period,
                        kind=kind,
                        recipient=recipient,
                        recipient_role=role,
                        locale=locale,
                        due_on=due,
                        dedupe_key=f"m:{m.id}:{period}:{kind}:{recipient}",
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                session.flush()
                counts[kind] += 1
    session.commit()
    return counts


def _queued_for_first(session: Session, limit: int) -> dict[str, int]:
    """Rows the set-based first scan queued for the first ``limit`` mentorships, by kind."""
    first = select(Mentorship.id).order_by(Mentorship.id).limit(limit).subquery()
    rows = session.execute(
        select(Reminder.kind, func.count())
        .where(Reminder.mentorship_id.in_(select(first.c.id)), Reminder.created_at == NOW)
        .group_by(Reminder.kind)
    ).all()
    return {**dict.fromkeys(KINDS, 0), **{str(kind): int(count) for kind, count in rows}}


def _fmt(counts: dict[str, int]) -> str:
    return "  ".join(f"{kind} {counts[kind]:>7,}" for kind in KINDS)


def run(backend: str, n: int, naive_n: int) -> None:
    naive_n = min(naive_n, n)
    with scratch_database(backend) as url:
        engine = make_engine(url)
        upgrade(engine)
        factory = make_session_factory(engine)
        loaded = load(factory, n)
        scans = [
            ("first scan", NOW),
            ("same now again", NOW),
            ("one day later", NOW + timedelta(days=1)),
        ]
        results = [(label, now, *timed_scan(factory, now)) for label, now in scans]
        first = results[0][2]
        per_pair = {"upcoming": 2, "overdue": 2, "escalation": COORDINATORS + 2}
        expected = {kind: loaded.pairs[kind] * per_pair[kind] for kind in KINDS}
        assert first == expected, f"first scan queued {first}, the data says {expected}"
        assert results[1][2] == dict.fromkeys(KINDS, 0), "a second scan queued again"
        with factory() as session:
            naive_expected = _queued_for_first(session, naive_n)
            session.execute(delete(Reminder))  # the outbox as it was before the first scan
            session.commit()
        with factory() as session:
            started = time.perf_counter()
            naive_counts = naive_scan(session, NOW, naive_n)
            naive = time.perf_counter() - started
        assert naive_counts == naive_expected, f"naive {naive_counts} != set {naive_expected}"
        # The same job also queues the programme's emails (term ending, check-ins).
        with factory() as session:
            started = time.perf_counter()
            programme = queue_programme_reminders(session, now=NOW)
            session.commit()
            programme_seconds = time.perf_counter() - started
        engine.dispose()

    today = local_today(TIMEZONE, NOW)
    print(
        f"\n{backend}: reminders scan over {n:,} active mentorships "
        f"({loaded.craftsmen:,} craftsmen, {n:,} apprentices, {UNITS} units, "
        f"{COORDINATORS} coordinators; loaded in {loaded.seconds:.1f} s)"
    )
    print(
        f"  pairs at {today} ({TIMEZONE}): upcoming window {loaded.pairs['upcoming']:,}, "
        f"overdue {loaded.pairs['overdue']:,}, of which escalated {loaded.pairs['escalation']:,}"
    )
    for label, now, counts, seconds in results:
        local = now.astimezone(ZoneInfo(TIMEZONE)).strftime("%Y-%m-%d %H:%M")
        total = sum(counts.values())
        print(f"  {label:<15} now={local}  {seconds:6.2f} s   queued {total:>7,}: {_fmt(counts)}")
    print(
        f"  programme scan  now={NOW.astimezone(ZoneInfo(TIMEZONE)):%Y-%m-%d %H:%M}"
        f"  {programme_seconds:6.2f} s   queued term_ending {programme['term_ending']:,}, "
        f"check_in {programme['check_in']:,} (the rest of the job's run)"
    )
    scale = n / naive_n
    how = "all of them" if naive_n == n else f"first {naive_n:,}, extrapolated x{scale:g}"
    extrapolated = naive * scale
    print(
        f"  naive ORM loop  now={NOW.astimezone(ZoneInfo(TIMEZONE)):%Y-%m-%d %H:%M}"
        f"  {naive:6.2f} s   queued {sum(naive_counts.values()):>7,}: {_fmt(naive_counts)}"
        f"   ({how}; same rows as the set-based scan for them)"
    )
    print(
        f"  naive per mentorship {naive / naive_n * 1e3:.3f} ms -> {extrapolated:.1f} s "
        f"for {n:,}; set-based first scan {results[0][3]:.2f} s: "
        f"{extrapolated / results[0][3]:.0f}x faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mentorships", type=int, default=100_000)
    parser.add_argument(
        "--naive-n",
        type=int,
        default=10_000,
        help="mentorships the naive loop runs over (its time is extrapolated to --mentorships)",
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="also run the same on a SQLite file, for comparison"
    )
    args = parser.parse_args()
    backends = ["postgresql", "sqlite"] if args.sqlite else ["postgresql"]
    for backend in backends:
        run(backend, args.mentorships, args.naive_n)


if __name__ == "__main__":
    main()
