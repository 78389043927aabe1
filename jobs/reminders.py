"""Jobs of reminders.md: queue reminders and digests (set-based), and send the outbox."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from jobs import JobContext
from matcher.db import session_scope
from matcher.mail import PermanentFailure, TemporaryFailure, mailer_for
from matcher.metrics import OUTBOX_SENDS
from matcher.models import REMINDER_FAILED, Reminder
from matcher.services.emails import build_message, render
from matcher.services.reminders import (
    cancel_if_obsolete,
    claim_batch,
    mark_failed_attempt,
    mark_sent,
    new_claim_token,
    queue_digests,
    queue_reminders,
)

log = logging.getLogger(__name__)
BATCH = 50


def reminders(ctx: JobContext) -> dict[str, Any]:
    """Queue the upcoming / overdue / escalation emails due at ``ctx.now``, each at most once."""
    with session_scope(ctx.session_factory) as session:
        return queue_reminders(session, now=ctx.now)


def digest(ctx: JobContext) -> dict[str, Any]:
    """Queue this week's digest for every coordinator, at most once per week."""
    with session_scope(ctx.session_factory) as session:
        return {"digest": queue_digests(session, now=ctx.now)}


def outbox(ctx: JobContext) -> dict[str, Any]:
    """Send what is queued: claim a batch (a lease), send each, record each outcome at once.

    The transactions are this loop's: the lease is committed before the first email of the batch
    goes out, and each outcome before the next one, so that a sender killed mid-batch sends no
    email twice and leaves the rest to the lease's end.
    """
    counts = {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0}
    token = new_claim_token()
    folder = ctx.instance_path / "outbox"
    mailer_context = mailer_for(ctx.settings.smtp_url, folder, ctx.settings.smtp_timeout_seconds)
    with mailer_context as mailer, ctx.session_factory() as session:
        while True:
            ids = claim_batch(session, now=ctx.now, token=token, limit=BATCH)
            session.commit()
            if not ids:
                break
            batch = session.scalars(
                select(Reminder).where(Reminder.id.in_(ids)).order_by(Reminder.id)
            ).all()
            for reminder in batch:
                if cancel_if_obsolete(session, reminder=reminder, token=token):
                    session.commit()
                    counts["cancelled"] += 1
                    OUTBOX_SENDS.labels("cancelled").inc()
                    continue
                try:
                    rendered = render(session, reminder, ctx.settings, ctx.now)
                    message = build_message(reminder, rendered, ctx.settings, ctx.now)
                except Exception as exc:
                    # A bug of ours (a template, data we let in): logged as one, retried like a
                    # temporary failure; once failed, `matcher reminders retry` after the fix.
                    log.exception(
                        "reminder %s (%s): the email could not be built", reminder.id, reminder.kind
                    )
                    error: Exception = exc
                    error_text = f"building the email: {type(exc).__name__}: {exc}"
                else:
                    try:
                        mailer.send(message)
                    except Exception as exc:
                        if not isinstance(exc, TemporaryFailure | PermanentFailure):
                            log.exception("reminder %s could not be sent", reminder.id)
                        error, error_text = exc, str(exc)
                    else:
                        mark_sent(session, reminder_id=reminder.id, token=token, now=ctx.now)
                        session.commit()
                        counts["sent"] += 1
                        OUTBOX_SENDS.labels("sent").inc()
                        continue
                # Only a 5xx is permanent; anything else (a dropped connection, or a bug while
                # rendering) is retried later, and fails the row after MAX_ATTEMPTS.
                status = mark_failed_attempt(
                    session,
                    reminder=reminder,
                    token=token,
                    now=ctx.now,
                    error=error_text,
                    permanent=isinstance(error, PermanentFailure),
                )
                session.commit()
                counts["failed" if status == REMINDER_FAILED else "retry"] += 1
                OUTBOX_SENDS.labels("failed" if status == REMINDER_FAILED else "retry").inc()
                level = logging.ERROR if status == REMINDER_FAILED else logging.WARNING
                log.log(
                    level,
                    "reminder %s to %s: %s (%s)",
                    reminder.id,
                    reminder.recipient,
                    status,
                    error_text,
                )
    return counts
