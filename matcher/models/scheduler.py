"""The scheduler process's sign of life."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from matcher.db import Base, UTCDateTime


class SchedulerHeartbeat(Base):
    """The active scheduler's last sign of life: one row, rewritten by its ``heartbeat`` job.

    The leader lock says a scheduler process holds the role; the beat says it still runs jobs
    (a process wedged while holding the lock stops beating). ``/readyz`` and ``/metrics`` read it.
    """

    __tablename__ = "scheduler_heartbeats"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
