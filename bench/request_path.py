"""The request path in one process: what a read costs the server beyond Flask itself.

    .venv/bin/python bench/request_path.py [--backends sqlite,postgresql] [--seconds 3]
        [--repeats 5] [--people 300] [--profile KIND]

Builds the app on a scratch database of each backend with the demo alliance plus ``--people``
generated apprentices and a fifth as many craftsmen per unit (as ``bench/load.py`` does), solves
one match run, then calls the WSGI app directly (no server, no socket: a prepared environ per
request, the body read to the end) in a loop, kind by kind, ``--repeats`` rounds of
``--seconds`` each, and prints the median CPU ms per request (this process's CPU, as
``bench/load.py`` counts the server's: the database's own work and the waits for it are not
the request path's) and its ratio to the bare endpoint:

- ``bare``: ``GET /healthz``, which does no I/O: the app's own hooks (request id, access log
  line, metrics, security headers) around ``{"status": "ok"}``; every request pays that;
- ``list apprentices``: ``GET /api/v1/units/{id}/apprentices?page_size=50`` (coordinator);
- ``get apprentice``: ``GET /api/v1/apprentices/{id}`` (coordinator);
- ``list proposals``: ``GET /api/v1/match-runs/{id}/proposals?page_size=50``;
- ``list mentorships``: ``GET /api/v1/mentorships?page_size=50``.

Absolute figures depend on the machine; the ratios much less. The targets (a list page within
4x of the bare endpoint, a single read within 3x) are held under gunicorn, by ``bench/load.py``:
in-process the bare endpoint skips the server's own share of every request, so these ratios run
higher. This bench says where a read's time goes: ``--profile KIND`` runs that kind under
cProfile (CPU time) instead and prints the top; ``PROFILE_OUT=file`` keeps the raw profile. The
spread (min-max of the rounds) says how noisy the machine was.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import random
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from load import DEMO, people
from scratch import scratch_database
from werkzeug.test import EnvironBuilder

from matcher.app import create_app
from matcher.extensions import state
from matcher.logs import HANDLER_NAME
from matcher.migrations import upgrade

API = "/api/v1"
BARE = "bare"


def cli(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    if result.exit_code != 0:
        raise SystemExit(f"matcher {' '.join(args)} failed: {result.stderr}{result.exception!r}")
    return str(result.stdout).strip()


def build(url: str, n_people: int) -> tuple[Flask, dict[str, tuple[str, str]]]:
    """The app on a loaded database, and the requests to time: kind -> (path, key)."""
    upgrade_engine_url(url)
    settings = {"database_url": url, "env": "production", "secret_key": secrets.token_urlsafe(32)}
    # The rate limit is on and counting, with a budget no loop reaches (as bench/load.py).
    app = create_app({**settings, "log_level": "INFO", "rate_limit_per_minute": 100_000_000})
    # The access log is formatted as in production (JSON) and written to a sink, not the terminal.
    for handler in logging.getLogger().handlers:
        if handler.get_name() == HANDLER_NAME and isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the app
    cli(app, "demo")
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    skills = [s["name"] for s in demo["skills"] if s.get("parent")]
    coordinator = cli(app, "keys", "create", "--role", "coordinator", "--alliance", "EMCA")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {coordinator}"}
    alliance_id = client.get(f"{API}/alliances", headers=auth).get_json()[0]["id"]
    units = client.get(f"{API}/alliances/{alliance_id}/units", headers=auth).get_json()
    rng = random.Random(42)
    for unit in units:
        hr = cli(
            app, "keys", "create", "--role", "hr", "--alliance", "EMCA", "--unit", unit["code"]
        )
        apprentices, craftsmen = people(unit["code"], n_people, skills, rng)
        for plural, items in (("apprentices", apprentices), ("craftsmen", craftsmen)):
            response = client.post(
                f"{API}/units/{unit['id']}/{plural}/bulk",
                json=items,
                headers={"Authorization": f"Bearer {hr}"},
            )
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
    cli(app, "match", "--alliance", "EMCA")
    unit_id = units[0]["id"]
    first = client.get(f"{API}/units/{unit_id}/apprentices?page_size=1", headers=auth)
    apprentice_id = first.get_json()[0]["id"]
    runs = client.get(f"{API}/alliances/{alliance_id}/match-runs", headers=auth).get_json()
    requests = {
        BARE: ("/healthz", coordinator),
        "list apprentices": (f"{API}/units/{unit_id}/apprentices?page_size=50", coordinator),
        "get apprentice": (f"{API}/apprentices/{apprentice_id}", coordinator),
        "list proposals": (f"{API}/match-runs/{runs[0]['id']}/proposals?page_size=50", coordinator),
        "list mentorships": (f"{API}/mentorships?page_size=50", coordinator),
    }
    for path, key in requests.values():  # each answers 200 with a body before it is timed
        response = client.get(path, headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
    return app, requests


def upgrade_engine_url(url: str) -> None:
    from matcher.db import make_engine

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def caller(app: Flask, path: str, key: str) -> Callable[[], None]:
    """One request through the WSGI app, as a server would make it (body read, then closed)."""
    builder = EnvironBuilder(path=path, headers={"Authorization": f"Bearer {key}"})
    environ = builder.get_environ()
    builder.close()
    status: list[str] = []

    def start_response(code: str, _headers: Any, _exc: Any = None) -> Any:
        status.append(code)
        return None

    def call() -> None:
        status.clear()
        body = app(dict(environ), start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
        if not status[0].startswith("200"):
            raise SystemExit(f"{path} answered {status[0]}")

    return call


def time_kind(call: Callable[[], None], seconds: float) -> float:
    """Milliseconds of this process's CPU per call over about ``seconds`` of wall time.

    CPU, not wall time, as ``bench/load.py`` counts the server's: what the database server
    spends (another process) and the time spent waiting for it are not the request path's."""
    n, started, cpu_started = 0, time.perf_counter(), time.process_time()
    until = started + seconds
    while True:
        for _ in range(20):
            call()
        n += 20
        if time.perf_counter() >= until:
            return (time.process_time() - cpu_started) * 1000 / n


def run(backend: str, args: argparse.Namespace) -> None:
    with scratch_database(backend) as url:
        app, requests = build(url, args.people)
        calls = {kind: caller(app, path, key) for kind, (path, key) in requests.items()}
        for call in calls.values():  # warm-up: caches, pools, first compilations
            time_kind(call, 0.3)
        if args.profile:
            profile(calls[args.profile], args.seconds)
            state(app).engine.dispose()
            return
        rounds: dict[str, list[float]] = {kind: [] for kind in calls}
        for _ in range(args.repeats):  # interleaved: a noisy moment hits every kind alike
            for kind, call in calls.items():
                rounds[kind].append(time_kind(call, args.seconds))
        state(app).engine.dispose()
    bare = statistics.median(rounds[BARE])
    print(
        f"\n{backend}: CPU ms per request (median of {args.repeats} x {args.seconds:g} s; min-max)"
    )
    for kind, values in rounds.items():
        median = statistics.median(values)
        print(
            f"  {kind:<18} {median:7.3f} ms  ({min(values):.3f}-{max(values):.3f})"
            f"  {median / bare:5.1f}x bare"
        )
    # The targets (a list page within 4x, a single read within 3x) are held under gunicorn
    # (bench/load.py): in-process, the bare endpoint skips the server's own share of every
    # request, so these ratios run higher than the served ones.
    print("  (targets are measured under gunicorn: bench/load.py)")


def profile(call: Callable[[], None], seconds: float) -> None:
    # CPU time, not wall time: what the server spends, not what it waits for the database.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    time_kind(call, seconds)
    profiler.disable()
    if os.environ.get("PROFILE_OUT"):
        profiler.dump_stats(os.environ["PROFILE_OUT"])
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--profile", help="a kind to profile instead (e.g. 'list apprentices')")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run(backend, args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
