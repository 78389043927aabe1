"""The ``offers`` job (programme.md, "Two-way choice"): remind, then expire, unanswered offers."""

from __future__ import annotations

from typing import Any

from jobs import JobContext
from matcher.db import session_scope
from matcher.services.offers import expire_offers, queue_offer_reminders


def offers(ctx: JobContext) -> dict[str, Any]:
    """Queue the one reminder of each offer three days old, and mark the offers past their
    expiry ``expired``: each once, however many schedulers run it (unique keys, compare-and-set).
    The ``outbox`` job sends the emails."""
    with session_scope(ctx.session_factory) as session:
        reminded = queue_offer_reminders(session, now=ctx.now)
        expired = expire_offers(session, now=ctx.now)
        return {"offer_reminders": reminded, "expired": expired}
