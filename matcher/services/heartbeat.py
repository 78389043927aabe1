"""The scheduler's heartbeat: written by the active scheduler, read by ``/readyz`` and
``/metrics`` so that an operator sees a scheduler that holds its lock but no longer runs jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from matcher.models import SchedulerHeartbeat

BEAT_EVERY_SECONDS = 15
STALE_AFTER_SECONDS = 60  # four beats missed: the jobs are not running


def beat(session: Session, *, now: datetime, started_at: datetime, host: str, pid: int) -> None:
    """Record that the active scheduler (``host``/``pid``, up since ``started_at``) is alive."""
    values = {"beat_at": now, "started_at": started_at, "host": host, "pid": pid}
    updated = session.execute(
        update(SchedulerHeartbeat).where(SchedulerHeartbeat.id == 1).values(**values)
    )
    if not updated.rowcount:  # type: ignore[attr-defined]
        session.add(SchedulerHeartbeat(id=1, **values))
    session.flush()


@dataclass(frozen=True)
class SchedulerStatus:
    """What ``/readyz`` says of the scheduler."""

    state: str  # "active" | "stalled" | "not running"
    beat_at: datetime | None
    age_seconds: float | None


def scheduler_status(session: Session, *, lock_held: bool, now: datetime) -> SchedulerStatus:
    """``active`` when a scheduler holds the leader lock and beat within
    :data:`STALE_AFTER_SECONDS`; ``stalled`` when it holds the lock without beating;
    ``not running`` when nobody holds the lock."""
    heartbeat = session.get(SchedulerHeartbeat, 1)
    beat_at = heartbeat.beat_at if heartbeat else None
    age = (now - beat_at).total_seconds() if beat_at else None
    if not lock_held:
        state = "not running"
    elif age is not None and age <= STALE_AFTER_SECONDS:
        state = "active"
    else:
        state = "stalled"
    return SchedulerStatus(state=state, beat_at=beat_at, age_seconds=age)
