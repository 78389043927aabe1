"""The ``webhooks`` job: send the deliveries the outbox holds, signed (Standard Webhooks)."""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from jobs import JobContext
from matcher.chat import chat_request, platform_error
from matcher.models import (
    CHANNEL_FAILED,
    DELIVERY_FAILED,
    ChannelMessage,
    NotificationChannel,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from matcher.services.access import event_data_for_unit
from matcher.services.channels import (
    claim_messages,
    message_rows_for,
    record_message_outcome,
    render_message,
)
from matcher.services.consent import withheld_people
from matcher.services.reminders import new_claim_token
from matcher.services.webhooks import (
    Outcome,
    claim_deliveries,
    fail_undeliverable,
    fan_out,
    record_outcome,
    signature_header,
)
from matcher.webhook_http import RefusedTarget, post, retry_after_seconds

log = logging.getLogger(__name__)
BATCH = 100  # with SENDERS at once, a batch of timeouts takes 100 / 8 × 15 s, inside the lease
# Requests in flight at once: a slow receiver holds one sender, not the whole outbox.
SENDERS = 8
USER_AGENT = "craftsman-matcher-webhooks/1"


@dataclass(frozen=True)
class Request:
    """One signed POST, built from the rows before it leaves (senders touch no session)."""

    url: str
    body: bytes
    headers: dict[str, str]


def deliver(ctx: JobContext) -> dict[str, Any]:
    """Send what is due: lease a batch, send its requests (``SENDERS`` at once), record each
    outcome as soon as it is known.

    The lease is committed before the first request of the batch, each outcome on its own, and
    no transaction is open while a receiver is being called: a sender killed mid-request leaves
    that delivery to the lease's end, when it is sent again with the same ``webhook-id`` (at
    least once; receivers deduplicate by it). Deliveries of one endpoint may arrive out of order.
    """
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    token = new_claim_token()
    settings = ctx.settings
    https_only = settings.env == "production" and not settings.webhook_allow_private

    def send(request: Request) -> Outcome:
        return _send(
            request,
            timeout=settings.webhook_timeout_seconds,
            allow_private=settings.webhook_allow_private,
            https_only=https_only,
        )

    with ctx.session_factory() as session, ThreadPoolExecutor(SENDERS) as senders:
        while fan_out(session):  # the events written since the last run become deliveries
            session.commit()
        session.commit()
        while True:
            ids = claim_deliveries(session, now=ctx.now, token=token, limit=BATCH)
            session.commit()
            if not ids:
                break
            batch = session.execute(
                select(WebhookDelivery, WebhookEndpoint, WebhookEvent)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .join(WebhookEvent, WebhookEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.id.in_(ids))
                .order_by(WebhookDelivery.id)
            ).all()
            # Who of the batch's pairs another unit may not be shown (no consent, privacy.md).
            withheld = withheld_people(
                session, [event.payload.get("data") or {} for _, _, event in batch]
            )
            session.commit()
            in_flight: dict[Future[Outcome], tuple[WebhookDelivery, WebhookEndpoint, Any]] = {}
            for delivery, endpoint, event in batch:
                what = (delivery.id, event.type, event.message_id, endpoint.id)
                if not endpoint.enabled:
                    reason = f"not sent: the webhook is disabled ({endpoint.disabled_reason})"
                    fail_undeliverable(session, delivery=delivery, token=token, reason=reason)
                    session.commit()
                    counts["failed"] += 1
                    log.info("delivery %s (%s %s) to webhook %s: %s", *what, reason)
                    continue
                request = _request(endpoint, event, ctx, withheld)
                in_flight[senders.submit(send, request)] = (delivery, endpoint, what)
            outcomes = _Outcomes(session)
            for future in as_completed(in_flight):
                delivery, endpoint, what = in_flight[future]
                outcome = future.result()
                outcomes.begin()
                status = record_outcome(
                    session,
                    delivery=delivery,
                    endpoint=endpoint,
                    token=token,
                    now=ctx.now,
                    outcome=outcome,
                )
                outcomes.recorded(future, in_flight)
                if outcome.delivered:
                    counts["delivered"] += 1
                    log.info("delivery %s (%s %s) to webhook %s: delivered", *what)
                else:
                    counts["failed" if status == DELIVERY_FAILED else "retry"] += 1
                    log.warning(
                        "delivery %s (%s %s) to webhook %s: %s (%s)", *what, status, outcome.error
                    )
        counts |= _chat_messages(ctx, session, senders, send, token)
    return counts


def _chat_messages(
    ctx: JobContext,
    session: Session,
    senders: ThreadPoolExecutor,
    send: Callable[[Request], Outcome],
    token: str,
) -> dict[str, int]:
    """Send the chat groups' messages the same way: leased, ``SENDERS`` at once, each outcome
    committed as it is known."""
    counts = {"chat_sent": 0, "chat_retry": 0, "chat_failed": 0}
    while True:
        ids = claim_messages(session, now=ctx.now, token=token, limit=BATCH)
        session.commit()
        if not ids:
            return counts
        in_flight: dict[Future[Outcome], tuple[ChannelMessage, NotificationChannel]] = {}
        outcomes = _Outcomes(session)
        for message, channel in message_rows_for(session, ids):
            try:
                title, markdown = render_message(session, message, channel, ctx.settings, ctx.now)
            except Exception as exc:
                # A bug of ours (a text, data we let in): logged with its traceback and retried
                # like a failed request, never sent half-built.
                log.exception(
                    "chat message %s to channel %s: cannot be built", message.id, channel.id
                )
                failure = f"building the message: {type(exc).__name__}: {exc}"
                record_message_outcome(
                    session, message=message, token=token, now=ctx.now, error=failure
                )
                session.commit()
                counts["chat_retry"] += 1
                continue
            chat = chat_request(
                channel.kind, channel.url, channel.secret, title, markdown, now_seconds=time.time()
            )
            request = Request(
                chat.url,
                chat.body,
                {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT},
            )
            in_flight[senders.submit(send, request)] = (message, channel)
        session.commit()
        for future in as_completed(in_flight):
            message, channel = in_flight[future]
            outcome = future.result()
            error = outcome.error if not outcome.delivered else platform_error(outcome.answer)
            outcomes.begin()
            status = record_message_outcome(
                session, message=message, token=token, now=ctx.now, error=error
            )
            outcomes.recorded(future, in_flight)
            what = (message.id, message.topic, channel.kind, channel.id)
            if error is None:
                counts["chat_sent"] += 1
                log.info("chat message %s (%s) to %s channel %s: sent", *what)
            else:
                counts["chat_failed" if status == CHANNEL_FAILED else "chat_retry"] += 1
                log.warning("chat message %s (%s) to %s channel %s: %s (%s)", *what, status, error)


class _Outcomes:
    """Commits the outcomes of a batch as they come: at once when no other answer is waiting,
    together with those that are (a fast receiver's answers arrive faster than commits).

    On PostgreSQL these commits return before their WAL reaches the disk. Waiting for the disk
    bounded the job at about 100 deliveries a second; what an asynchronous commit risks is a
    server crash within a fraction of a second of it, and a lost outcome costs one more delivery
    with the same ``webhook-id``, which receivers deduplicate (at least once, as promised). A
    killed scheduler loses nothing: the server has the commit.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.open = False
        self.done: set[Future[Outcome]] = set()

    def begin(self) -> None:
        if not self.open and self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        self.open = True

    def recorded(self, future: Future[Outcome], batch: Mapping[Future[Outcome], Any]) -> None:
        self.done.add(future)
        if not any(other.done() for other in batch if other not in self.done):
            self.session.commit()
            self.open = False


def _request(
    endpoint: WebhookEndpoint,
    event: WebhookEvent,
    ctx: JobContext,
    withheld: Collection[tuple[str, int]],
) -> Request:
    """The event's body, signed for the endpoint now; a unit's endpoint receives the pair's
    person of another unit through the cross-unit allowlist (``access.event_data_for_unit``)."""
    payload = event.payload
    if endpoint.unit_id is not None and isinstance(payload.get("data"), dict):
        data = event_data_for_unit(payload["data"], endpoint.unit_id, withheld)
        payload = {**payload, "data": data}
    body = orjson.dumps(payload)
    # The signature's time is the moment of sending (receivers refuse stale ones), whatever
    # time the job runs as.
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(endpoint, event.message_id, timestamp, body, ctx.now),
    }
    return Request(endpoint.url, body, headers)


def _send(request: Request, *, timeout: int, allow_private: bool, https_only: bool) -> Outcome:
    """One POST; what came of it (never raises for the receiver's or the network's doing)."""
    try:
        answer = post(
            request.url,
            request.body,
            request.headers,
            timeout=timeout,
            allow_private=allow_private,
            https_only=https_only,
        )
    except RefusedTarget as exc:
        return Outcome(status_code=None, error=f"refused by the address guard: {exc}", refused=True)
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(status_code=None, error=f"{type(exc).__name__}: {exc}")
    if 200 <= answer.status < 300:
        return Outcome(status_code=answer.status, answer=answer.excerpt)
    return Outcome(
        status_code=answer.status,
        error=f"answered {answer.status}: {answer.excerpt[:200]}",
        retry_after_seconds=retry_after_seconds(answer.retry_after),
    )
