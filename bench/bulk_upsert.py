"""Bulk upsert of 10,000 apprentices in one request, on SQLite and PostgreSQL.

Runs the whole request path in-process (JSON parsing, marshmallow validation, the set-based
service, the database) and compares it with the naive way: one ORM round trip per person.

    .venv/bin/python bench/bulk_upsert.py [--n 10000] [--naive-n 10000]
        [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

from scratch import scratch_database
from sqlalchemy import select

from matcher.app import create_app
from matcher.db import make_engine
from matcher.extensions import state
from matcher.migrations import upgrade
from matcher.models import Apprentice, ApprenticeWant, Skill
from matcher.services.alliances import create_alliance, create_unit
from matcher.services.api_keys import create_key
from matcher.services.skills import put_skill

SKILLS = [f"技能{i:03}" for i in range(300)]


def apprentices(n: int, rng: random.Random, tag: str) -> list[dict[str, Any]]:
    weights = [1 / (rank + 1) for rank in range(len(SKILLS))]  # Zipf-like popularity
    return [
        {
            "external_id": f"A-{i:06}",
            "name": f"学徒{i}号{tag}",
            "email": f"a{i}@unit.example.cn",
            "region": rng.choice(["杭州", "湘潭", "哈尔滨", "西安"]),
            "wants": [
                {"name": name, "level": rng.randint(1, 5), "weight": rng.choice([0.5, 1, 2])}
                for name in dict.fromkeys(rng.choices(SKILLS, weights, k=rng.randint(1, 4)))
            ],
        }
        for i in range(n)
    ]


def naive_upsert(session: Any, unit_id: int, items: list[dict[str, Any]]) -> None:
    """The obvious ORM code: look each person up, then add or change them and their wants."""
    for item in items:
        person = session.scalars(
            select(Apprentice).where(
                Apprentice.unit_id == unit_id, Apprentice.external_id == item["external_id"]
            )
        ).one_or_none()
        if person is None:
            person = Apprentice(unit_id=unit_id, external_id=item["external_id"])
            session.add(person)
        for name in ("name", "email", "region"):
            setattr(person, name, item[name])
        person.wants = [
            ApprenticeWant(
                skill_id=session.scalars(select(Skill.id).where(Skill.name == want["name"])).one(),
                level=want["level"],
                weight=want["weight"],
                position=position,
            )
            for position, want in enumerate(item["wants"])
        ]
        session.flush()
    session.commit()


def run(backend: str, n: int, naive_n: int) -> None:
    rng = random.Random(7)
    with scratch_database(backend) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        app = create_app({"database_url": url, "env": "testing", "log_level": "WARNING"})
        factory = state(app).session_factory
        with factory() as session:
            alliance = create_alliance(session, fields={"code": "B", "name": "bench"})
            for name in SKILLS:
                put_skill(session, alliance_id=alliance.id, name=name, parent=None, aliases=[])
            units = [
                create_unit(session, alliance=alliance, fields={"code": c, "name": c})
                for c in ("U1", "U2")
            ]
            key = create_key(session, role="admin").secret
            session.commit()
            unit_ids = [u.id for u in units]
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        url = f"/api/v1/units/{unit_ids[0]}/apprentices/bulk"
        first = json.dumps(apprentices(n, rng, ""), ensure_ascii=False)
        changed = json.dumps(apprentices(n, random.Random(8), "改"), ensure_ascii=False)
        rows = []
        for label, body in (
            ("create", first),
            ("resend unchanged", first),
            ("update all", changed),
        ):
            started = time.perf_counter()
            response = client.post(url, data=body, headers=headers)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
            rows.append((label, elapsed, response.get_json()))
        naive_items = apprentices(naive_n, rng, "")
        with factory() as session:
            started = time.perf_counter()
            naive_upsert(session, unit_ids[1], naive_items)
            naive = time.perf_counter() - started
        state(app).engine.dispose()
    size_mb = len(first.encode()) / 1e6
    print(f"\n{backend}: {n:,} apprentices in one request ({size_mb:.1f} MB body)")
    for label, elapsed, counts in rows:
        print(f"  {label:<18} {elapsed:7.2f} s   {n / elapsed:9,.0f} people/s   {counts}")
    naive_rate = naive_n / naive
    print(
        f"  naive ORM loop     {naive:7.2f} s   {naive_rate:9,.0f} people/s"
        f"   ({naive_n:,} created, one round trip each)"
    )
    print(f"  ratio (create, per person): {n / rows[0][1] / naive_rate:.1f}x the naive way's rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--naive-n", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run(backend, args.n, args.naive_n)


if __name__ == "__main__":
    main()
