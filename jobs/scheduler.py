"""The scheduler process: APScheduler 3.x running the jobs of :func:`jobs.registry`.

APScheduler 3 cannot share a job store between processes, so jobs are declared in code and only
one scheduler is active at a time: it holds a leader lock (``pg_try_advisory_lock`` on a dedicated
PostgreSQL connection, released by the server if the process dies; an ``flock`` on a file beside
the SQLite database). A standby process waits for the lock. Correctness never rests on the lock
alone: jobs claim their rows with compare-and-set updates and unique keys.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy import Connection, Engine, text

from jobs import Job, JobContext, registry
from matcher.config import Settings

log = logging.getLogger(__name__)
LOCK_KEY = 0x6D61_7463  # "matc": the advisory lock id of the active scheduler
STANDBY_RETRY_SECONDS = 15.0


class LeaderLock:
    """Held by the one active scheduler; released when the process or its connection dies."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Connection | None = None
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it."""
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect()
            held = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}
                ).scalar()
            )
            connection.commit()
            if held:
                self._connection = connection
            else:
                connection.close()
            return held
        handle = open(self._lock_path(), "a+", encoding="utf-8")  # noqa: SIM115 - held while leading
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def still_held(self) -> bool:
        """False when the lock connection was lost (the server then released the lock)."""
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1"))
            self._connection.commit()
        except Exception:
            log.warning("leader lock connection lost")
            self.release()
            return False
        return True

    def release(self) -> None:
        """Give the lock up."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                # The connection goes back to the pool, where a session lock would outlive it.
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                connection.commit()
                connection.close()
            except Exception:
                connection.invalidate()  # closing the DBAPI connection releases the lock
        if self._file is not None:
            self._file.close()
            self._file = None

    def held_elsewhere(self) -> bool:
        """Whether some scheduler process holds the lock now (for ``/readyz``)."""
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                held = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND objid = :k AND granted"
                    ),
                    {"k": LOCK_KEY},
                ).scalar()
            return bool(held)
        try:
            with open(self._lock_path(), "a+", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
        except BlockingIOError:
            return True
        return False

    def _lock_path(self) -> str:
        database = self.engine.url.database
        if database and database != ":memory:":
            return f"{database}.scheduler.lock"
        return str(Path(tempfile.gettempdir()) / "matcher-scheduler.lock")


def run_job(
    job: Job,
    *,
    session_factory: Any,
    settings: Settings,
    instance_path: Path,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Run one job once as if it were ``now`` (default: the current time)."""
    context = JobContext(
        session_factory=session_factory,
        settings=settings,
        now=(now or datetime.now(UTC)).astimezone(UTC),
        instance_path=instance_path,
    )
    outcome = job.func(context)
    log.log(logging.INFO if did_work(outcome) else logging.DEBUG, "job %s: %s", job.name, outcome)
    return outcome


def did_work(outcome: dict[str, Any]) -> bool:
    """Whether a job's summary counts anything done: a tick with all counts zero (or none, as the
    heartbeat's) is routine, and logged at DEBUG so that INFO shows what changed."""
    return any(
        isinstance(value, int) and not isinstance(value, bool) and value != 0
        for value in outcome.values()
    )


def build_scheduler(
    *, session_factory: Any, settings: Settings, instance_path: Path, lock: LeaderLock
) -> BlockingScheduler:
    """A scheduler with every job, each one skipped when this process lost the leader lock."""
    scheduler = BlockingScheduler(
        timezone=settings.timezone,
        job_defaults={
            "coalesce": True,  # a stalled scheduler runs a missed job once, not once per miss
            "max_instances": 1,
            "misfire_grace_time": 3600,  # the default (1 s) silently skips runs after a stall
        },
    )

    jobs = registry()
    # job name -> the job that runs once right after its first run (popped: first run only)
    followers = {job.follows: job.name for job in jobs.values() if job.follows}

    def guarded(job: Job) -> None:
        if not lock.still_held():
            log.error("leader lock lost; stopping so that a standby can take over")
            scheduler.shutdown(wait=False)
            return
        try:
            run_job(
                job, session_factory=session_factory, settings=settings, instance_path=instance_path
            )
        except Exception:
            log.exception("job %s failed; it runs again at its next time", job.name)
        finally:
            follower = followers.pop(job.name, None)
            if follower is not None:
                scheduler.modify_job(follower, next_run_time=datetime.now(UTC))

    for job in jobs.values():
        at_start = {}
        if job.start_after is not None:
            at_start["next_run_time"] = datetime.now(UTC) + timedelta(seconds=job.start_after)
        scheduler.add_job(
            guarded,
            job.trigger,
            args=[job],
            id=job.name,
            name=job.description or job.name,
            replace_existing=True,
            **job.trigger_args,
            **at_start,
        )
    return scheduler


def serve_forever(
    *,
    engine: Engine,
    session_factory: Any,
    settings: Settings,
    instance_path: Path,
    stop: threading.Event | None = None,
) -> None:
    """Wait to become the active scheduler, then run the jobs until stopped or the lock is lost."""
    stop = stop or threading.Event()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per 5-second run
    lock = LeaderLock(engine)
    standing_by = False
    while not stop.is_set():
        if not lock.try_acquire():
            # Said once when this process starts waiting, not every retry.
            log.log(
                logging.DEBUG if standing_by else logging.INFO,
                "another scheduler is active; standing by",
            )
            standing_by = True
            stop.wait(STANDBY_RETRY_SECONDS)
            continue
        standing_by = False
        log.info("scheduler active (pid %s): %s", os.getpid(), ", ".join(registry()))
        scheduler = build_scheduler(
            session_factory=session_factory,
            settings=settings,
            instance_path=instance_path,
            lock=lock,
        )

        def stop_when_asked(scheduler: BlockingScheduler = scheduler) -> None:
            stop.wait()
            if scheduler.running:
                scheduler.shutdown(wait=False)

        threading.Thread(target=stop_when_asked, daemon=True).start()
        try:
            scheduler.start()
        finally:
            lock.release()
