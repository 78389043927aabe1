"""Webhooks: how fast the ``webhooks`` job delivers, and what the outbox costs the API's writes.

    .venv/bin/python bench/webhooks.py [--sqlite] [--events 10000] [--writes 3000]

On a scratch database (PostgreSQL by default, ``--sqlite`` for a SQLite file):

1. **Write latency, webhooks off against on.** ``POST /mentorships/{id}/summaries`` through the
   WSGI app in this process (no server), over 200 mentorships in each of two alliances alike:
   "off", one with no endpoint (each write pays one indexed query for the endpoints); "on", one
   whose coordinator and HR system have three endpoints taking every event, so each summary
   writes its event in its transaction. The writes alternate between the two request by request,
   so that whatever stalls the machine or the database (a checkpoint, another process) hits both
   alike: alternating in rounds of a few hundred, the p99 ratio swung from 1.03 to 1.22
   between runs. p50 and p99 of each (target: p99 on within 10 % of off).
2. **Delivery throughput.** ``--events`` events for one endpoint, delivered by one run of the job
   to a receiver in another process on loopback (answering 200 to each), against the same
   number of POSTs from a bare ``http.client`` loop (a new connection each, as the job makes:
   the ceiling of this receiver and this machine without a database, signing or the guard).
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import logging
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from scratch import scratch_database
from sqlalchemy import delete, update

from jobs import registry
from jobs.scheduler import run_job
from matcher.app import create_app
from matcher.extensions import state
from matcher.migrations import upgrade
from matcher.models import Apprentice, Craftsman, WebhookEndpoint, WebhookEvent
from matcher.services.access import Principal
from matcher.services.alliances import create_alliance, create_unit
from matcher.services.api_keys import create_key
from matcher.services.mentorships import create_mentorship
from matcher.services.people import APPRENTICE, CRAFTSMAN, upsert_people
from matcher.services.skills import put_skill
from matcher.services.webhooks import Change, create_endpoint, emit

API = "/api/v1"
PAIRS = 200
MODES = ("off", "on")
RECEIVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

ThreadingHTTPServer.request_queue_size = 128  # the default 5 drops concurrent connects
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def arrange(url: str) -> tuple[Any, dict[str, Any]]:
    """The app on a database with two alliances ("off", "on") of 200 cross-unit mentorships each;
    keys and ids to use."""
    engine_app = create_app({"database_url": url, "secret_key": secrets.token_urlsafe(32)})
    upgrade(state(engine_app).engine)
    app = create_app(
        {
            "database_url": url,
            "env": "testing",
            "secret_key": secrets.token_urlsafe(32),
            "log_level": "WARNING",
            "rate_limit_per_minute": 0,
            "webhook_allow_private": True,
        }
    )
    with state(app).session_factory() as session:
        ids: dict[str, Any] = {"admin": create_key(session, role="admin").secret}
        for mode in MODES:
            ids[mode] = _alliance(session, mode)
        session.commit()
    return app, ids


def _alliance(session: Any, code: str) -> dict[str, Any]:
    """An alliance of two units with ``PAIRS`` mentorships between them."""
    alliance = create_alliance(session, fields={"code": code.upper(), "name": f"基准联盟{code}"})
    put_skill(session, alliance_id=alliance.id, name="焊接", parent=None, aliases=[])
    masters = create_unit(session, alliance=alliance, fields={"code": "M", "name": "师傅单位"})
    learners = create_unit(session, alliance=alliance, fields={"code": "L", "name": "学徒单位"})
    craftsmen = upsert_people(
        session,
        kind=CRAFTSMAN,
        unit=masters,
        items=[
            _person(f"C-{i}", honours=[], capacity=4, skills=[{"name": "焊接", "level": 5}])
            for i in range(PAIRS)
        ],
    ).ids
    apprentices = upsert_people(
        session,
        kind=APPRENTICE,
        unit=learners,
        items=[
            _person(f"A-{i}", wants=[{"name": "焊接", "level": 3, "weight": 1.0}])
            for i in range(PAIRS)
        ],
    ).ids
    mentorships = [
        create_mentorship(
            session,
            craftsman=session.get_one(Craftsman, c),
            apprentice=session.get_one(Apprentice, a),
            started_on=date(2026, 1, 1),
            summary_every_days=7,
        ).id
        for c, a in zip(craftsmen, apprentices, strict=True)
    ]
    coordinator = Principal(role="coordinator", alliance_id=alliance.id)
    hr = Principal(role="hr", alliance_id=alliance.id, unit_id=learners.id)
    return {
        "alliance": alliance.id,
        "unit": learners.id,
        "mentorships": mentorships,
        "owners": [coordinator, coordinator, hr],
    }


def _person(external_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "name": f"人员{external_id}",
        "email": None,
        "locale": "zh-CN",
        "region": "杭州",
        "active": True,
        **fields,
    }


def add_endpoints(app: Any, owners: list[Principal], url: str, events: list[str]) -> None:
    """An endpoint for each of ``owners`` taking ``events``."""
    with state(app).session_factory() as session:
        for owner in owners:
            create_endpoint(
                session,
                owner=owner,
                url=url,
                events=events,
                description=None,
                allow_private=True,
                https_only=False,
            )
        session.commit()


def write_latency(app: Any, ids: dict[str, Any], url: str, writes: int) -> dict[str, list[float]]:
    """Seconds of each write, per mode: ``writes`` a mode, alternating request by request."""
    add_endpoints(app, ids["on"]["owners"], url, ["*"])
    client = app.test_client()
    auth = {"Authorization": f"Bearer {ids['admin']}"}
    body = {"author": "apprentice", "content": "练习了平焊、立焊", "hours": 2}
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    for count in range(writes):
        for mode in MODES if count % 2 == 0 else MODES[::-1]:
            mentorships = ids[mode]["mentorships"]
            mentorship = mentorships[count % len(mentorships)]
            started = time.perf_counter()
            response = client.post(
                f"{API}/mentorships/{mentorship}/summaries", json=body, headers=auth
            )
            timings[mode].append(time.perf_counter() - started)
            assert response.status_code == 201, response.get_data(as_text=True)
    return timings


def start_receiver() -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def bare_posts(port: int, count: int) -> float:
    """Seconds for ``count`` POSTs of a small JSON body, a new connection each."""
    body = b'{"type": "person.deactivated", "timestamp": "2026-12-01T00:00:00Z", "data": {}}'
    started = time.perf_counter()
    for _ in range(count):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        connection.request("POST", "/hook", body=body, headers={"Content-Type": "application/json"})
        connection.getresponse().read()
        connection.close()
    return time.perf_counter() - started


def delivery_throughput(app: Any, ids: dict[str, Any], port: int, events: int) -> float:
    """Seconds for one run of the job to deliver ``events`` events to one endpoint (of the
    "off" alliance, so the writes' events are not among them)."""
    off = ids["off"]
    with state(app).session_factory() as session:  # the writes' events and endpoints: gone
        session.execute(update(WebhookEndpoint).values(enabled=False))
        session.execute(delete(WebhookEvent))
        session.commit()
    add_endpoints(app, off["owners"][:1], f"http://127.0.0.1:{port}/hook", ["person.deactivated"])
    with state(app).session_factory() as session:
        changes = [
            Change(
                "person.deactivated",
                off["alliance"],
                (off["unit"],),
                {"kind": "apprentice", "id": i, "external_id": f"A-{i}", "name": f"人员{i}"},
            )
            for i in range(events)
        ]
        assert emit(session, changes) == events
        session.commit()
    matcher_state = state(app)
    started = time.perf_counter()
    outcome = run_job(
        registry()["webhooks"],
        session_factory=matcher_state.session_factory,
        settings=dataclasses.replace(matcher_state.settings, webhook_allow_private=True),
        instance_path=Path(app.instance_path),
        now=datetime.now(UTC),
    )
    seconds = time.perf_counter() - started
    assert outcome["delivered"] == events, outcome
    return seconds


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--writes", type=int, default=3000, help="per mode")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    backend = "sqlite" if args.sqlite else "postgresql"
    receiver, port = start_receiver()
    try:
        with scratch_database(backend) as url:
            app, ids = arrange(url)
            timings = write_latency(app, ids, f"http://127.0.0.1:{port}/hook", args.writes)
            print(f"{backend}: POST /mentorships/{{id}}/summaries, {args.writes} per mode")
            off_p99 = quantile(timings["off"], 0.99)
            for mode in ("off", "on"):
                values = timings[mode]
                print(
                    f"  webhooks {mode:3}: p50 {statistics.median(values) * 1000:6.2f} ms"
                    f"  p99 {quantile(values, 0.99) * 1000:6.2f} ms"
                )
            ratio = quantile(timings["on"], 0.99) / off_p99
            print(f"  p99 on / off: {ratio:.2f} (target: at most 1.10)")
            seconds = delivery_throughput(app, ids, port, args.events)
            bare = bare_posts(port, args.events)
            print(f"{args.events} events delivered by one run of the webhooks job:")
            print(f"  {seconds:.2f} s, {args.events / seconds:,.0f} events/s")
            print(
                f"  bare http.client loop to the same receiver: {bare:.2f} s,"
                f" {args.events / bare:,.0f} POSTs/s (the job runs at"
                f" {bare / seconds:.0%} of it)"
            )
            state(app).engine.dispose()
    finally:
        receiver.kill()
        receiver.wait()


if __name__ == "__main__":
    main()
