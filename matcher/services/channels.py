"""Chat-group notifications (webhooks.md, last section): 企业微信 / 钉钉 / 飞书 robots of an
alliance or of a unit, hearing the digest, escalations, overdue notices and the events they
choose, as short markdown in the group's language.

Messages go through an outbox like the emails and webhooks: queued at most once (a unique
``dedupe_key`` per channel and subject), sent by the ``webhooks`` job, retried with the same
back-off for 3 days. Emails stay; a channel adds to them. The facts and links of the digest,
escalation and overdue notices are the emails' own (``services/emails.render``), so the two
never disagree; events are told from the event's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, cast, delete, or_, select, update
from sqlalchemy.orm import Session, aliased

from matcher.chat import channel_url_problem
from matcher.config import Settings
from matcher.db import utcnow
from matcher.errors import ValidationFailed
from matcher.i18n import N_, translate
from matcher.models import (
    CHANNEL_FAILED,
    CHANNEL_PENDING,
    CHANNEL_SENT,
    MENTORSHIP_ACTIVE,
    Alliance,
    Apprentice,
    ChannelMessage,
    Craftsman,
    Mentorship,
    NotificationChannel,
    Reminder,
    Unit,
)
from matcher.services import access
from matcher.services.access import Principal
from matcher.services.consent import withheld_people
from matcher.services.emails import render
from matcher.services.mentorships import local_today
from matcher.services.reminders import windows as reminder_windows
from matcher.services.webhooks import GIVE_UP_AFTER, claim_rows, insert_ignoring, retry_delay
from matcher.webhook_http import url_problem

# How each event is told in a chat group (message ids of both catalogs).
EVENT_TEXTS = {
    "mentorship.created": N_("chat.event.mentorship.created"),
    "mentorship.ended": N_("chat.event.mentorship.ended"),
    "mentorship.completed": N_("chat.event.mentorship.completed"),
    "summary.submitted": N_("chat.event.summary.submitted"),
    "summary.overdue": N_("chat.event.summary.overdue"),
    "match_run.proposed": N_("chat.event.match_run.proposed"),
    "match_run.committed": N_("chat.event.match_run.committed"),
    "person.deactivated": N_("chat.event.person.deactivated"),
}


def create_channel(
    session: Session,
    *,
    owner: Principal,
    fields: dict[str, Any],
    allow_private: bool,
    https_only: bool,
) -> NotificationChannel:
    """A robot for the owner's alliance, or one of its units (an hr key: its own unit; an admin
    names the alliance)."""
    alliance_id, unit_id = access.channel_scope(
        session, owner, fields.get("alliance_id"), fields.get("unit_id")
    )
    _check(fields, unit_id=unit_id, allow_private=allow_private, https_only=https_only)
    now = utcnow()
    channel = NotificationChannel(
        alliance_id=alliance_id,
        unit_id=unit_id,
        kind=fields["kind"],
        url=fields["url"],
        secret=fields.get("secret"),
        events=list(dict.fromkeys(fields["events"])),
        locale=fields.get("locale", "zh-CN"),
        description=fields.get("description"),
        enabled=fields.get("enabled", True),
        created_by=owner.label,
        created_at=now,
        updated_at=now,
    )
    session.add(channel)
    session.flush()
    return channel


def _check(
    fields: dict[str, Any], *, unit_id: int | None, allow_private: bool, https_only: bool
) -> None:
    problem = url_problem(fields["url"], allow_private=allow_private, https_only=https_only)
    problem = problem or channel_url_problem(
        fields["kind"], fields["url"], allow_private=allow_private
    )
    if problem:
        raise ValidationFailed("The robot's URL cannot be used.", errors={"url": [problem]})
    if unit_id is not None and "digest" in fields["events"]:
        raise ValidationFailed(
            "The digest is the alliance's: only an alliance's channel hears it.",
            errors={"events": ["'digest' is for an alliance's channel."]},
        )


def change_channel(
    session: Session,
    *,
    channel: NotificationChannel,
    changes: dict[str, Any],
    allow_private: bool,
    https_only: bool,
) -> NotificationChannel:
    """Change what was sent; the URL and events are checked as on creation."""
    merged = {
        "kind": changes.get("kind", channel.kind),
        "url": changes.get("url", channel.url),
        "events": changes.get("events", channel.events),
    }
    _check(merged, unit_id=channel.unit_id, allow_private=allow_private, https_only=https_only)
    for name in ("kind", "url", "secret", "locale", "description", "enabled"):
        if name in changes:
            setattr(channel, name, changes[name])
    if "events" in changes:
        channel.events = list(dict.fromkeys(changes["events"]))
    channel.updated_at = utcnow()
    session.flush()
    return channel


def delete_channel(session: Session, *, channel: NotificationChannel) -> None:
    """The channel and its messages go."""
    session.execute(delete(ChannelMessage).where(ChannelMessage.channel_id == channel.id))
    session.delete(channel)
    session.flush()


def channels_query(principal: Principal) -> Select[Any]:
    """The caller's channels, oldest first."""
    return access.where_visible(
        select(NotificationChannel).order_by(NotificationChannel.id),
        principal,
        alliance_id=NotificationChannel.alliance_id,
        unit_ids=(NotificationChannel.unit_id,),
    )


# Queueing the reminder cycle's notices -------------------------------------------------------


def _rows(channel: NotificationChannel, topic: str, now: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "channel_id": channel.id,
        "topic": topic,
        "alliance_id": channel.alliance_id,
        "status": CHANNEL_PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "give_up_at": now + GIVE_UP_AFTER,
        "created_at": now,
        **fields,
    }


def _listening(session: Session, topic: str) -> list[NotificationChannel]:
    channels = session.scalars(
        select(NotificationChannel)
        .where(NotificationChannel.enabled.is_(True))
        .order_by(NotificationChannel.id)
    ).all()
    return [channel for channel in channels if topic in (channel.events or [])]


def queue_channel_notices(session: Session, *, now: datetime) -> int:
    """Overdue and escalation notices for the channels that hear them: once per (channel,
    pair, period, kind), on the same local dates as the emails (the reminders' windows)."""
    queued = 0
    for kind in ("overdue", "escalation"):
        for channel in _listening(session, kind):
            alliance = session.get_one(Alliance, channel.alliance_id)
            window = next(
                w for w in reminder_windows(local_today(alliance.timezone, now)) if w.kind == kind
            )
            period = Mentorship.periods_filled + 1
            key = f"{channel.id}:{kind}:" + cast(Mentorship.id, String) + ":" + cast(period, String)
            stmt = select(Mentorship.id, period.label("period"), Mentorship.next_due_on).where(
                Mentorship.alliance_id == channel.alliance_id,
                Mentorship.status == MENTORSHIP_ACTIVE,
                window.condition,
                ~select(ChannelMessage.id).where(ChannelMessage.dedupe_key == key).exists(),
            )
            if channel.unit_id is not None:
                mentor, learner = aliased(Craftsman), aliased(Apprentice)
                stmt = (
                    stmt.join(mentor, mentor.id == Mentorship.craftsman_id)
                    .join(learner, learner.id == Mentorship.apprentice_id)
                    .where(
                        or_(mentor.unit_id == channel.unit_id, learner.unit_id == channel.unit_id)
                    )
                )
            found = session.execute(stmt.order_by(Mentorship.id)).all()
            rows = [
                _rows(
                    channel,
                    kind,
                    now,
                    dedupe_key=f"{channel.id}:{kind}:{mentorship_id}:{period_index}",
                    mentorship_id=mentorship_id,
                    period_index=period_index,
                    data={"due_on": due.isoformat() if due else None},
                )
                for mentorship_id, period_index, due in found
            ]
            if rows:
                queued += _insert_new(session, rows)
    return queued


def queue_channel_digests(session: Session, *, now: datetime) -> int:
    """This week's digest for every alliance channel that hears it, once per ISO week."""
    rows = []
    for channel in _listening(session, "digest"):
        alliance = session.get_one(Alliance, channel.alliance_id)
        today = local_today(alliance.timezone, now)
        year, week, _ = today.isocalendar()
        rows.append(
            _rows(
                channel,
                "digest",
                now,
                dedupe_key=f"{channel.id}:digest:{year}-W{week:02d}",
                data={"due_on": today.isoformat()},
            )
        )
    return _insert_new(session, rows) if rows else 0


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert the messages not queued yet (by another run meanwhile); how many were new."""
    inserted = session.execute(
        insert_ignoring(session, ChannelMessage).returning(ChannelMessage.id), rows
    )
    return len(inserted.all())


# Rendering and sending ------------------------------------------------------------------------


def render_message(
    session: Session,
    message: ChannelMessage,
    channel: NotificationChannel,
    settings: Settings,
    now: datetime,
) -> tuple[str, str]:
    """The message's title and markdown, in the channel's language, from the data as it is."""
    overview = f"{settings.base_url.rstrip('/')}/"
    if message.topic in ("digest", "escalation", "overdue"):
        due = message.data.get("due_on")
        # The email's own facts and links, as the coordinators' copy has them (no personal
        # summary link: a group is not the pair).
        as_email = Reminder(
            alliance_id=message.alliance_id,
            mentorship_id=message.mentorship_id,
            period_index=message.period_index,
            kind=message.topic,
            recipient="",
            recipient_role="coordinator",
            locale=channel.locale,
            due_on=datetime.fromisoformat(due).date() if due else None,
            dedupe_key=message.dedupe_key,
        )
        # A unit's group sees the pair as that unit does (privacy.md); the alliance's, whole.
        rendered = render(session, as_email, settings, now, unit_id=channel.unit_id)
        lines = [line.strip() for line in rendered.text.splitlines() if line.strip()]
        return rendered.subject, "\n\n".join([f"**{rendered.subject}**", *lines])
    title = _event_text(session, message, channel)
    link = translate(channel.locale, "chat.overview", link=overview)
    return title, f"**{title}**\n\n{link}"


def _event_text(session: Session, message: ChannelMessage, channel: NotificationChannel) -> str:
    locale = channel.locale
    data = access.event_data_for_unit(
        message.data, channel.unit_id, withheld_people(session, [message.data])
    )
    units: dict[Any, str] = {
        unit.id: unit.name
        for unit in session.scalars(
            select(Unit).where(
                Unit.id.in_(
                    [
                        person["unit_id"]
                        for person in (data.get("craftsman"), data.get("apprentice"), data)
                        if isinstance(person, dict) and "unit_id" in person
                    ]
                )
            )
        )
    }

    def person(role: str) -> str:
        who = data.get(role) or {}
        name = who.get("name", "")
        return translate(
            locale,
            "email.person",
            name=translate(locale, "person.withheld") if name is None else name,
            unit=units.get(who.get("unit_id"), ""),
        )

    params: dict[str, Any] = {}
    if "craftsman" in data:
        params |= {"craftsman": person("craftsman"), "apprentice": person("apprentice")}
    params |= {
        "started_on": data.get("started_on"),
        "ended_on": data.get("ended_on"),
        "period": data.get("period_index"),
        "hours": data.get("hours"),
        "due": data.get("due_on"),
        "run": data.get("match_run_id"),
        "proposals": data.get("proposals"),
        "unmatched": data.get("unmatched"),
        "count": data.get("mentorships_created"),
        "name": data.get("name"),
        "unit": units.get(data.get("unit_id"), data.get("unit_code")),
    }
    if message.topic not in EVENT_TEXTS:
        return translate(locale, "chat.event.other", type=message.topic)
    return translate(locale, EVENT_TEXTS[message.topic], **params)


def claim_messages(session: Session, *, now: datetime, token: str, limit: int = 25) -> list[int]:
    """Lease due chat messages to ``token`` (as deliveries are leased)."""
    return claim_rows(session, ChannelMessage, now=now, token=token, limit=limit)


def record_message_outcome(
    session: Session, *, message: ChannelMessage, token: str, now: datetime, error: str | None
) -> str:
    """Sent, or retried after the back-off until the 3 days are up, then failed."""
    if error is None:
        values: dict[str, Any] = {"status": CHANNEL_SENT, "sent_at": now, "last_error": None}
    elif now >= message.give_up_at:
        values = {"status": CHANNEL_FAILED, "last_error": error[:2000]}
    else:
        delay = retry_delay(message.attempts + 1)
        values = {
            "status": CHANNEL_PENDING,
            "next_attempt_at": min(now + delay, message.give_up_at),
            "last_error": error[:2000],
        }
    session.execute(
        update(ChannelMessage)
        .where(ChannelMessage.id == message.id, ChannelMessage.claimed_by == token)
        .values(attempts=message.attempts + 1, locked_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    return str(values["status"])


def message_rows_for(
    session: Session, ids: Sequence[int]
) -> list[tuple[ChannelMessage, NotificationChannel]]:
    """The leased messages with their channels."""
    rows = session.execute(
        select(ChannelMessage, NotificationChannel)
        .join(NotificationChannel, NotificationChannel.id == ChannelMessage.channel_id)
        .where(ChannelMessage.id.in_(ids))
        .order_by(ChannelMessage.id)
    ).all()
    return [(message, channel) for message, channel in rows]
