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
from matcher.services.channels import queue_channel_digests, queue_channel_notices
from matcher.services.emails import build_message, render
from matcher.services.programme_reminders import queue_programme_reminders
from matcher.services.reminders import (
    cancel_if_obsolete,
    claim_batch,
    mark_failed_attempt,
    mark_sent,
    new_claim_token,
    queue_digests,
    queue_reminders,
)
from matcher.services.webhooks import emit_overdue

log = logging.getLogger(__name__)
BATCH = 50


def reminders(ctx: JobContext) -> dict[str, Any]:
    """Queue the upcoming / overdue / escalation emails due at ``ctx.now``, and the programme's
    term-ending and check-in emails, each at most once."""
    with session_scope(ctx.session_factory) as session:
        queued: dict[str, Any] = {
            **queue_reminders(session, now=ctx.now),
            **queue_programme_reminders(session, now=ctx.now),
        }
        # In the same transaction: the pair is overdue for webhooks and chat groups when it is
        # for email. Their counts are reported when there are any (most installs have none).
        also = {
            "overdue_events": emit_overdue(session, now=ctx.now),
            "chat_notices": queue_channel_notices(session, now=ctx.now),
        }
        return queued | {name: count for name, count in also.items() if count}


def digest(ctx: JobContext) -> dict[str, Any]:
    """Queue this week's digest for every coordinator, at most once per week."""
    with session_scope(ctx.session_factory) as session:
        queued = {"digest": queue_digests(session, now=ctx.now)}
        chat = queue_channel_digests(session, now=ctx.now)
        return queued | ({"chat_digests": chat} if chat else {})


def outbox(ctx: JobContext) -> dict[str, Any]:
    """Send what is queued: claim a batch (a lease), send each, record each outcome at once.

    The transactions are this loop's: the lease is committed before the first email of the batch
    goes out, and each outcome before the next one, so that a sender killed mid-batch sends no
    email twice and leaves the rest to the lease's end.
    """
    counts = {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0}
    token = new_claim_token()
    folder = ctx.instance_path / "outbox"
    delivered = "sent" if ctx.settings.smtp_url else f"written to {folder}"
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
                # One log line per email, whatever its outcome.
                email = (reminder.id, reminder.kind, reminder.recipient)
                if cancel_if_obsolete(session, reminder=reminder, token=token):
                    session.commit()
                    counts["cancelled"] += 1
                    OUTBOX_SENDS.labels("cancelled").inc()
                    log.info("reminder %s (%s) to %s: cancelled, no longer due", *email)
                    continue
                try:
                    rendered = render(session, reminder, ctx.settings, ctx.now)
                    message = build_message(reminder, rendered, ctx.settings, ctx.now)
                except Exception as exc:
                    # A bug of ours (a template, data we let in): logged as one, with its
                    # traceback, and retried like a temporary failure; once failed, `matcher
                    # reminders retry` after the fix.
                    error: Exception = exc
                    error_text = f"building the email: {type(exc).__name__}: {exc}"
                    bug = "the email could not be built"
                else:
                    try:
                        mailer.send(message)
                    except Exception as exc:
                        error, error_text = exc, str(exc)
                        expected = isinstance(exc, TemporaryFailure | PermanentFailure)
                        bug = "" if expected else "the email could not be sent"
                    else:
                        mark_sent(session, reminder_id=reminder.id, token=token, now=ctx.now)
                        session.commit()
                        counts["sent"] += 1
                        OUTBOX_SENDS.labels("sent").inc()
                        log.info("reminder %s (%s) to %s: %s", *email, delivered)
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
                level = logging.ERROR if status == REMINDER_FAILED or bug else logging.WARNING
                log.log(
                    level,
                    "reminder %s (%s) to %s: %s (%s)",
                    *email,
                    status,
                    bug or error_text,
                    exc_info=error if bug else None,
                )
    return counts
