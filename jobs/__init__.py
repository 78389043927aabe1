"""Scheduled jobs: module-level functions that call services, declared once as data.

The scheduler process (``matcher scheduler``) runs them under APScheduler; ``matcher jobs run NAME
--now ISO`` runs one of them once, as if it were that time. Each job takes a :class:`JobContext`
and returns a small summary of counts, logged at INFO when one is not zero (a tick that did nothing
is logged at DEBUG).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from matcher.config import Settings


@dataclass(frozen=True)
class JobContext:
    """What a job run needs: the database, the settings and the time it runs as."""

    session_factory: sessionmaker[Session]
    settings: Settings
    now: datetime  # aware, UTC
    instance_path: Path


JobFunc = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True)
class Job:
    """A job and its schedule (APScheduler trigger name and arguments)."""

    name: str
    func: JobFunc
    trigger: str
    trigger_args: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    # Also run this many seconds after the scheduler starts (catch up after downtime); None: no.
    start_after: float | None = None
    # Also run as soon as the first run of this job has finished (to send what it queued).
    follows: str | None = None


def registry() -> dict[str, Job]:
    """Every job by its stable name."""
    from jobs import heartbeat, match_runs, offers, reminders, retention, webhooks
    from matcher.services.heartbeat import BEAT_EVERY_SECONDS

    declared = [
        Job(
            "heartbeat",
            heartbeat.heartbeat,
            "interval",
            {"seconds": BEAT_EVERY_SECONDS},
            "Record that the active scheduler runs jobs (/readyz, /metrics).",
            start_after=0,
        ),
        Job(
            "match_runs",
            match_runs.solve_queued_runs,
            "interval",
            {"seconds": 5},
            "Solve match runs queued by the API (too large to solve in a web request).",
            start_after=0,
        ),
        Job(
            "reminders",
            reminders.reminders,
            "cron",
            {"minute": 5},
            "Queue upcoming / overdue / escalation emails (hourly; catches up after downtime).",
            start_after=0,
        ),
        Job(
            "outbox",
            reminders.outbox,
            "interval",
            {"minutes": 1},
            "Send queued emails over SMTP; retry temporary failures with growing delay.",
            follows="reminders",  # at start, right after the catch-up scan queued its emails
        ),
        Job(
            "digest",
            reminders.digest,
            "cron",
            {"day_of_week": "mon", "hour": 8},
            "Queue the weekly digest for every coordinator (Monday 08:00, MATCHER_TIMEZONE).",
        ),
        Job(
            "offers",
            offers.offers,
            "cron",
            {"minute": 20},
            "Remind craftsmen of offers 3 days old; expire unanswered offers (hourly).",
            start_after=0,
        ),
        Job(
            "webhooks",
            webhooks.deliver,
            "interval",
            {"seconds": 5},
            "Send signed webhook deliveries; retry failures with back-off and jitter for 3 days.",
            start_after=0,
        ),
        Job(
            "retention",
            retention.retention,
            "cron",
            {"hour": 3, "minute": 30},
            "Erase people past their alliance's retention_months; delete old sent emails' bodies.",
        ),
    ]
    return {job.name: job for job in declared}
