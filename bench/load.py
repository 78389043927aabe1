"""The API under gunicorn on loopback, driven with a realistic mix of reads and writes.

    .venv/bin/python bench/load.py [--seconds 60] [--sqlite] [--workers 2] [--clients 8]
        [--people 300] [--rate-limit 1000000]

Starts ``matcher serve --bind 127.0.0.1:PORT --workers N`` (gunicorn, gthread) against a scratch
PostgreSQL database (default, like production; ``MATCHER_TEST_POSTGRES_URL`` names the server) or
a fresh SQLite file (``--sqlite``), loads the demo alliance (``matcher db upgrade``,
``matcher demo``, ``matcher keys create``) plus ``--people`` generated apprentices and a fifth as
many craftsmen per unit (bulk upserts), solves one match run (``matcher match``), then drives the
server from this process for ``--seconds`` with ``--clients`` threads, each on its own keep-alive
connection (http.client), as coordinators and HR systems would: mostly paginated lists, single
people, mentorships, match runs and proposals; some HR upserts (PUT of one apprentice with changed
data) and training summaries. The server's rate limit is on and counting, with a budget no client
reaches (``MATCHER_RATE_LIMIT_PER_MINUTE``).

Prints requests/s and p50/p99 latency for reads and writes (and per request kind), the errors,
and how many cores the server, PostgreSQL, this client and the whole machine kept busy: the
clients share the machine with the server, so the figures are a lower bound, and anything else
running on the machine shows up in the last figure.

Then (``--per-kind-seconds``, 0 skips it) drives each kind of read alone, and first a bare
endpoint (``/healthz``: no I/O, so only what every request pays), and prints the server's CPU
per request of each and its ratio to the bare one's: absolute figures differ between machines,
the ratios much less.

Targets (../shared/spec/README.md): reads at 300+ requests/s with p99 under 100 ms, no errors;
server CPU per request of a list page within 4x the bare endpoint's, of a single read within 3x.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scratch import scratch_database

DEMO = Path(__file__).resolve().parent.parent / "matcher" / "demo" / "alliance.json"
MATCHER = str(Path(sys.executable).parent / "matcher")
API = "/api/v1"
# The bare endpoint: /healthz does no I/O, so it costs what every request pays (gunicorn, Flask,
# the app's hooks: request id, access log line, metrics, security headers) and nothing else.
BARE = "bare (/healthz)"
PER_KIND = (BARE, "list apprentices", "get apprentice", "list proposals", "list mentorships")


def matcher(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([MATCHER, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"matcher {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Client:
    """One keep-alive connection; JSON in and out."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(
        self, method: str, path: str, key: str, body: Any = None, *, parse: bool = True
    ) -> tuple[int, Any, dict[str, str]]:
        """Status, body (parsed JSON unless ``parse`` is false: the load loop keeps its CPU for
        the server) and headers."""
        headers = {"Authorization": f"Bearer {key}"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()  # reconnect on the next call
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.connection.close()
        is_json = "json" in response.getheader("Content-Type", "")
        payload = json.loads(raw) if parse and raw and is_json else raw
        return response.status, payload, dict(response.getheaders())


def wait_until_up(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not come up within 60 s")


@dataclass
class World:
    """What the clients need to know: keys, units, people, mentorships, the run."""

    alliance_id: int
    coordinator: str
    hr: dict[int, str]  # unit id -> key
    units: list[int]
    pages: dict[tuple[int, str], int]  # (unit, plural) -> pages of 50
    craftsmen: list[tuple[int, int]]  # (id, unit id)
    apprentices: list[tuple[int, int, dict[str, Any]]]  # (id, unit id, PUT body)
    mentorships: list[tuple[int, int]]  # (id, craftsman's unit id)
    run_id: int
    proposal_pages: int
    skills: list[str] = field(default_factory=list)
    server_pid: int = 0


# The demo alliance requires cross-unit consent (privacy.md): the generated people gave it.
CONSENT = {"given_at": "2026-01-05T09:00:00+08:00", "version": "1"}


def people(unit_code: str, n: int, skills: list[str], rng: random.Random) -> tuple[list[Any], ...]:
    regions = ["杭州", "湘潭", "哈尔滨", "西安", "上海", "重庆"]
    apprentices = [
        {
            "external_id": f"A-{unit_code}-G{i:05}",
            "name": f"学徒{unit_code}{i}",
            "email": f"g{i}@{unit_code.lower()}.example.cn",
            "region": rng.choice(regions),
            "cross_unit_consent": CONSENT,
            "wants": [
                {"name": s, "level": rng.randint(2, 5), "weight": rng.choice([0.5, 1.0, 2.0])}
                for s in rng.sample(skills, rng.randint(1, 3))
            ],
        }
        for i in range(n)
    ]
    craftsmen = [
        {
            "external_id": f"C-{unit_code}-G{i:05}",
            "name": f"工匠{unit_code}{i}",
            "email": f"m{i}@{unit_code.lower()}.example.cn",
            "region": rng.choice(regions),
            "honours": ["技能大师"],
            "cross_unit_consent": CONSENT,
            "skills": [{"name": s, "level": rng.randint(3, 5)} for s in rng.sample(skills, 3)],
            "capacity": rng.randint(1, 4),
        }
        for i in range(max(1, n // 5))
    ]
    return apprentices, craftsmen


def collect(client: Client, key: str, path: str) -> list[Any]:
    items: list[Any] = []
    page = 1
    while True:
        status, body, headers = client.call(
            "GET", f"{path}{'&' if '?' in path else '?'}page={page}&page_size=500", key
        )
        assert status == 200, (path, status, body)
        items.extend(body)
        meta = json.loads(headers.get("X-Pagination", "{}"))
        if page >= meta.get("total_pages", 1):
            return items
        page += 1


def load_world(env: dict[str, str], port: int, n_people: int) -> World:
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    skills = [s["name"] for s in demo["skills"] if s.get("parent")]
    codes = [u["code"] for u in demo["units"]]
    coordinator = matcher(env, "keys", "create", "--role", "coordinator", "--alliance", "EMCA")
    hr_by_code = {
        code: matcher(env, "keys", "create", "--role", "hr", "--alliance", "EMCA", "--unit", code)
        for code in codes
    }
    client = Client(port)
    status, alliances, _ = client.call("GET", f"{API}/alliances", coordinator)
    assert status == 200, alliances
    alliance_id = alliances[0]["id"]
    units = collect(client, coordinator, f"{API}/alliances/{alliance_id}/units")
    unit_ids = {u["code"]: u["id"] for u in units}
    hr = {unit_ids[code]: key for code, key in hr_by_code.items()}
    rng = random.Random(42)
    started = time.perf_counter()
    for code in codes:
        apprentices, craftsmen = people(code, n_people, skills, rng)
        for plural, items in (("apprentices", apprentices), ("craftsmen", craftsmen)):
            status, body, _ = client.call(
                "POST", f"{API}/units/{unit_ids[code]}/{plural}/bulk", hr_by_code[code], items
            )
            assert status == 200, (status, body)
    print(f"  bulk-loaded {len(codes)} units' people in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    matcher(env, "match", "--alliance", "EMCA")
    print(f"  solved one match run (matcher match) in {time.perf_counter() - started:.1f} s")
    client = Client(port)  # the old connection idled past gunicorn's keep-alive meanwhile

    world = World(
        alliance_id=alliance_id,
        coordinator=coordinator,
        hr=hr,
        units=list(hr),
        pages={},
        craftsmen=[],
        apprentices=[],
        mentorships=[],
        run_id=0,
        proposal_pages=1,
        skills=skills,
    )
    for unit_id in world.units:
        for plural in ("craftsmen", "apprentices"):
            found = collect(client, coordinator, f"{API}/units/{unit_id}/{plural}")
            world.pages[(unit_id, plural)] = max(1, -(-len(found) // 50))
            for person in found:
                if plural == "craftsmen":
                    world.craftsmen.append((person["id"], unit_id))
                else:
                    body = {k: person[k] for k in ("name", "email", "locale", "region", "active")}
                    body["wants"] = [
                        {"name": w["name"], "level": w["level"], "weight": w["weight"]}
                        for w in person["wants"]
                    ]
                    world.apprentices.append(
                        (person["id"], unit_id, body | {"external_id": person["external_id"]})
                    )
    world.mentorships = [
        (m["id"], m["craftsman"]["unit_id"])
        for m in collect(client, coordinator, f"{API}/mentorships?status=active")
    ]
    runs = collect(client, coordinator, f"{API}/alliances/{alliance_id}/match-runs")
    world.run_id = runs[0]["id"]
    proposals = collect(client, coordinator, f"{API}/match-runs/{world.run_id}/proposals")
    world.proposal_pages = max(1, -(-len(proposals) // 50))
    print(
        f"  {len(world.units)} units, {len(world.craftsmen)} craftsmen, "
        f"{len(world.apprentices)} apprentices, {len(world.mentorships)} active mentorships, "
        f"run {world.run_id} with {len(proposals)} proposals"
    )
    return world


@dataclass
class Sample:
    kind: str
    write: bool
    seconds: float
    status: int


class Driver:
    """One client thread: a keep-alive connection and its share of the writes."""

    def __init__(
        self, world: World, port: int, index: int, clients: int, only: str | None = None
    ) -> None:
        self.world = world
        self.only = only  # drive this one kind of request alone (the per-kind phase)
        self.client = Client(port)
        self.rng = random.Random(index)
        # Writes of one person or mentorship stay with one thread: no self-inflicted races.
        self.apprentices = world.apprentices[index::clients]
        self.mentorships = world.mentorships[index::clients]
        self.samples: list[Sample] = []
        self.failures: Counter[str] = Counter()

    def request(self) -> tuple[str, bool, str, str, str, Any]:
        """(kind, is a write, method, path, key, body), drawn from the mix (or of ``only``)."""
        if self.only == BARE:
            return BARE, False, "GET", "/healthz", self.world.coordinator, None
        while True:
            drawn = self.draw()
            if self.only is None or drawn[0] == self.only:
                return drawn

    def draw(self) -> tuple[str, bool, str, str, str, Any]:
        w, rng = self.world, self.rng
        unit = rng.choice(w.units)
        roll = rng.random()
        coordinator = w.coordinator
        if roll < 0.16:
            page = rng.randint(1, w.pages[(unit, "craftsmen")])
            path = f"{API}/units/{unit}/craftsmen?page={page}&page_size=50"
            return "list craftsmen", False, "GET", path, coordinator, None
        if roll < 0.34:
            page = rng.randint(1, w.pages[(unit, "apprentices")])
            path = f"{API}/units/{unit}/apprentices?page={page}&page_size=50"
            key = coordinator if roll < 0.28 else w.hr[unit]  # HR systems read their own too
            return "list apprentices", False, "GET", path, key, None
        if roll < 0.44:
            person_id, person_unit = rng.choice(w.craftsmen)
            key = coordinator if roll < 0.40 else w.hr[person_unit]
            return "get craftsman", False, "GET", f"{API}/craftsmen/{person_id}", key, None
        if roll < 0.54:
            person_id, person_unit, _ = rng.choice(w.apprentices)
            key = coordinator if roll < 0.50 else w.hr[person_unit]
            return "get apprentice", False, "GET", f"{API}/apprentices/{person_id}", key, None
        if roll < 0.62:
            path = f"{API}/mentorships?page_size=50"
            if roll >= 0.59:
                return "list mentorships", False, "GET", path, w.hr[unit], None
            return "list mentorships", False, "GET", path, coordinator, None
        if roll < 0.65 and w.mentorships:
            mentorship_id, _ = rng.choice(w.mentorships)
            path = f"{API}/mentorships/{mentorship_id}"
            return "get mentorship", False, "GET", path, coordinator, None
        if roll < 0.70:
            path = f"{API}/alliances/{w.alliance_id}/match-runs"
            return "list match runs", False, "GET", path, coordinator, None
        if roll < 0.72:
            path = f"{API}/match-runs/{w.run_id}"
            return "get match run", False, "GET", path, coordinator, None
        if roll < 0.84:
            page = rng.randint(1, w.proposal_pages)
            path = f"{API}/match-runs/{w.run_id}/proposals?page={page}&page_size=50"
            return "list proposals", False, "GET", path, coordinator, None
        if roll < 0.88:
            path = f"{API}/match-runs/{w.run_id}/unmatched?page_size=50"
            return "list unmatched", False, "GET", path, coordinator, None
        if roll < 0.97 or not self.mentorships:
            _, person_unit, body = rng.choice(self.apprentices)
            body = dict(body)
            body["region"] = rng.choice(["杭州", "湘潭", "西安", "上海"])
            body["name"] = body["name"].split("·")[0] + f"·{rng.randint(1, 9)}"
            body["wants"] = [{**want, "level": rng.randint(1, 5)} for want in body["wants"]]
            external_id = body.pop("external_id")
            path = f"{API}/units/{person_unit}/apprentices/{external_id}"
            return "put apprentice", True, "PUT", path, w.hr[person_unit], body
        mentorship_id, craftsman_unit = rng.choice(self.mentorships)
        body = {
            "author": "craftsman",
            "content": "本期完成数控车削工艺讲解与实操指导，学徒独立完成两件试件。",
            "hours": round(rng.uniform(2, 16), 1),
            "skills": rng.sample(w.skills, 2),
        }
        path = f"{API}/mentorships/{mentorship_id}/summaries"
        return "post summary", True, "POST", path, w.hr[craftsman_unit], body

    def run(self, until: float, record_from: float) -> None:
        while True:
            now = time.perf_counter()
            if now >= until:
                return
            kind, write, method, path, key, body = self.request()
            started = time.perf_counter()
            try:
                status, payload, _ = self.client.call(method, path, key, body, parse=False)
            except (OSError, http.client.HTTPException) as exc:
                status, payload = 0, repr(exc)
            elapsed = time.perf_counter() - started
            if started >= record_from:
                self.samples.append(Sample(kind, write, elapsed, status))
                if not 200 <= status < 300:
                    self.failures[f"{kind}: {status} {str(payload)[:200]}"] += 1


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far, per process of the server (gunicorn master and workers) and of
    PostgreSQL, by this process, and by the whole machine (Linux /proc; less elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    times = os.times()
    used = {"client": times.user + times.system}
    proc = Path("/proc")
    for stat in proc.glob("[0-9]*/stat"):
        try:
            name, _, rest = stat.read_text().partition(" (")[2].rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        pid, ppid = int(stat.parent.name), int(fields[1])
        seconds = (int(fields[11]) + int(fields[12])) / tick
        if server_pid in (pid, ppid):
            used[f"server:{pid}"] = seconds
        elif name == "postgres":
            used[f"postgres:{pid}"] = seconds
    if (proc / "stat").exists():
        cpu = (proc / "stat").read_text().splitlines()[0].split()[1:]
        used["machine"] = (sum(int(v) for v in cpu) - int(cpu[3]) - int(cpu[4])) / tick
    return used


def cores_busy(
    before: dict[str, float], after: dict[str, float], seconds: float
) -> dict[str, float]:
    """Cores kept busy between two samples, per group (processes that ended are left out)."""
    busy: dict[str, float] = defaultdict(float)
    for key, value in after.items():
        busy[key.partition(":")[0]] += (value - before.get(key, 0.0)) / seconds
    return busy


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(samples: list[Sample], seconds: float, failures: Counter[str]) -> dict[str, Any]:
    def line(label: str, chosen: list[Sample]) -> str:
        ms = [s.seconds * 1000 for s in chosen]
        return (
            f"  {label:<18} {len(chosen):8,} {len(chosen) / seconds:8.1f} req/s"
            f"   p50 {percentile(ms, 0.5):6.1f} ms   p99 {percentile(ms, 0.99):6.1f} ms"
        )

    reads = [s for s in samples if not s.write]
    writes = [s for s in samples if s.write]
    errors = sum(1 for s in samples if not 200 <= s.status < 300)
    print(line("reads", reads))
    print(line("writes", writes))
    print(line("all", samples))
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_kind[s.kind].append(s)
    print("  by request:")
    for kind in sorted(by_kind, key=lambda k: -len(by_kind[k])):
        print("  " + line(kind, by_kind[kind]))
    statuses = Counter(s.status for s in samples)
    print(f"  errors: {errors}   statuses: {dict(sorted(statuses.items()))}")
    for message, count in failures.most_common(5):
        print(f"    {count} x {message}")
    read_ms = [s.seconds * 1000 for s in reads]
    verdict = {
        "reads 300+ req/s": len(reads) / seconds >= 300,
        "read p99 < 100 ms": percentile(read_ms, 0.99) < 100,
        "no errors": errors == 0,
    }
    print(
        "  targets: " + ", ".join(f"{k}: {'yes' if ok else 'MISSED'}" for k, ok in verdict.items())
    )
    return verdict


def drive(
    world: World, port: int, clients: int, seconds: float, warmup: float, only: str | None
) -> tuple[list[Sample], Counter[str], dict[str, float], dict[str, float]]:
    """``clients`` threads for ``warmup`` + ``seconds``: the recorded samples, the failures and
    CPU seconds used by each process before and after the recorded part."""
    drivers = [Driver(world, port, i, clients, only) for i in range(clients)]
    record_from = time.perf_counter() + warmup
    until = record_from + seconds
    threads = [threading.Thread(target=d.run, args=(until, record_from)) for d in drivers]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, record_from - time.perf_counter()))
    cpu_before = cpu_seconds(world.server_pid)
    for thread in threads:
        thread.join()
    cpu_after = cpu_seconds(world.server_pid)
    failures: Counter[str] = Counter()
    for d in drivers:
        failures.update(d.failures)
    return [s for d in drivers for s in d.samples], failures, cpu_before, cpu_after


def per_kind(world: World, port: int, clients: int, seconds: float) -> None:
    """Each kind of read alone, the bare endpoint first: the server's CPU per request and its
    ratio to the bare endpoint's (targets: a list page within 4x, a single read within 3x)."""
    print(f"\n  server CPU per request, each kind alone for {seconds:g} s:")
    bare = float("nan")
    cpu: dict[str, float] = {}
    for kind in PER_KIND:
        samples, failures, before, after = drive(world, port, clients, seconds, 1.0, kind)
        server = cores_busy(before, after, 1.0)["server"]  # CPU seconds over the phase
        ok = [s for s in samples if 200 <= s.status < 300]
        cpu[kind] = server * 1000 / max(1, len(ok))
        if kind == BARE:
            bare = cpu[kind]
        errors = f"   errors {len(samples) - len(ok)}" if len(ok) < len(samples) else ""
        print(
            f"    {kind:<18} {len(ok) / seconds:8.1f} req/s   {cpu[kind]:6.2f} ms CPU"
            f"   {cpu[kind] / bare:5.1f}x bare{errors}"
        )
        for message, count in failures.most_common(3):
            print(f"      {count} x {message}")
    lists = max(cpu[k] for k in PER_KIND if k.startswith("list"))
    reads = cpu["get apprentice"]
    print(
        f"  targets: list pages <= 4x bare: {'yes' if lists <= 4 * bare else 'MISSED'}, "
        f"single read <= 3x bare: {'yes' if reads <= 3 * bare else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--sqlite", action="store_true", help="a fresh SQLite file, not PostgreSQL")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (4 threads each)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (connections)")
    parser.add_argument("--people", type=int, default=300, help="generated apprentices per unit")
    parser.add_argument(
        "--per-kind-seconds",
        type=float,
        default=10,
        help="then each kind of read alone, and the bare endpoint, for this long (0: skip)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=1_000_000,
        help="the server's MATCHER_RATE_LIMIT_PER_MINUTE: counted, never reached (0: off)",
    )
    args = parser.parse_args()
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    with tempfile.TemporaryDirectory(prefix="matcher-load-") as tmp:
        folder = Path(tmp)
        with scratch_database("sqlite" if args.sqlite else "postgresql") as url:
            env = {
                **os.environ,
                "MATCHER_DATABASE_URL": url,
                "MATCHER_ENV": "production",
                "MATCHER_SECRET_KEY": secrets.token_urlsafe(32),
                "MATCHER_RATE_LIMIT_PER_MINUTE": str(args.rate_limit),
                "PROMETHEUS_MULTIPROC_DIR": str(folder / "metrics"),
            }
            print(f"load: {backend}, gunicorn {args.workers} workers, {args.clients} clients")
            matcher(env, "db", "upgrade")
            matcher(env, "demo")
            port = free_port()
            log = folder / "server.log"
            with log.open("wb") as server_log:
                server = subprocess.Popen(
                    [
                        MATCHER,
                        "serve",
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--workers",
                        str(args.workers),
                    ],
                    env=env,
                    stdout=server_log,
                    stderr=subprocess.STDOUT,
                )
            try:
                wait_until_up(port, server, log)
                world = load_world(env, port, args.people)
                world.server_pid = server.pid
                samples, failures, cpu_before, cpu_after = drive(
                    world, port, args.clients, args.seconds, args.warmup, None
                )
                print(f"\n{backend}: {args.seconds:.0f} s after {args.warmup:.0f} s warm-up")
                report(samples, args.seconds, failures)
                used = cores_busy(cpu_before, cpu_after, args.seconds)
                print(
                    f"  CPU (cores busy, of {os.cpu_count()}): server {used['server']:.2f}, "
                    f"PostgreSQL (all its databases) {used['postgres']:.2f}, "
                    f"this client {used['client']:.2f}, "
                    f"whole machine {used['machine']:.2f}"
                )
                if args.per_kind_seconds > 0:
                    per_kind(world, port, args.clients, args.per_kind_seconds)
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


if __name__ == "__main__":
    main()
