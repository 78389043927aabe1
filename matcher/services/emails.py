"""The reminder and digest emails: plain text plus HTML, in the recipient's locale (zh-CN, en)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.config import Settings
from matcher.i18n import DEFAULT_LOCALE, N_, install_gettext, translate
from matcher.models import (
    LOCALES,
    MENTORSHIP_ACTIVE,
    OFFER_REMINDER_KINDS,
    PROGRAMME_REMINDER_KINDS,
    PROPOSAL_PENDING,
    RUN_PROPOSED,
    Alliance,
    Apprentice,
    Craftsman,
    MatchRun,
    Mentorship,
    Offer,
    Proposal,
    Reminder,
    TrainingSummary,
)
from matcher.services import access
from matcher.services.mentorships import local_today, overdue_periods
from matcher.services.reminders import ESCALATE_AFTER_DAYS
from matcher.services.summary_links import (
    CheckInLink,
    SummaryLink,
    make_check_in_token,
    make_offer_token,
    make_token,
)
from matcher.text import header_safe

# Each kind's subject and opening sentence (message ids of the catalogs in ``matcher.i18n``).
SUBJECTS = {
    "upcoming": N_("email.subject.upcoming"),
    "overdue": N_("email.subject.overdue"),
    "escalation": N_("email.subject.escalation"),
    "digest": N_("email.subject.digest"),
    "term_ending": N_("email.subject.term_ending"),
    "check_in": N_("email.subject.check_in"),
    "offer": N_("email.subject.offer"),
    "offer_reminder": N_("email.subject.offer_reminder"),
}
OPENINGS = {
    "upcoming": N_("email.upcoming"),
    "overdue": N_("email.overdue"),
    "escalation": N_("email.escalation"),
    "term_ending": N_("email.term_ending"),
    "check_in": N_("email.check_in"),
    "offer": N_("email.offer"),
    "offer_reminder": N_("email.offer_reminder"),
}


@cache
def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("matcher", "templates/email"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # One cached environment for every locale: the locale is a variable of each render.
    install_gettext(env, lambda context, msgid: translate(context["locale"], msgid))
    return env


def message_id(reminder: Reminder, mail_from: str) -> str:
    """Stable per outbox row: a resend after a crash carries the same id, so it can be deduped."""
    domain = mail_from.rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(reminder.dedupe_key.encode("utf-8")).hexdigest()[:12]
    return f"<reminder-{reminder.id}.{digest}@{domain}>"


@dataclass(frozen=True)
class Rendered:
    """Subject and both bodies."""

    subject: str
    text: str
    html: str


def render(
    session: Session,
    reminder: Reminder,
    settings: Settings,
    now: datetime | None = None,
    *,
    unit_id: int | None = None,
) -> Rendered:
    """The email of one outbox row, from the data as it is at ``now`` (default: the clock's);
    ``unit_id``: read as that unit reads it (a unit's chat group), else as its recipient."""
    alliance = session.get_one(Alliance, reminder.alliance_id)
    locale = reminder.locale if reminder.locale in LOCALES else DEFAULT_LOCALE
    if reminder.kind == "digest":
        context = _digest_context(session, alliance, reminder)
    elif reminder.kind in OFFER_REMINDER_KINDS:
        context = _offer_context(session, alliance, reminder, settings)
    else:
        context = _pair_context(session, alliance, reminder, settings, now, unit_id)
    subject = translate(
        locale, SUBJECTS[reminder.kind], alliance=alliance.name, **context["subject"]
    )
    name = "digest" if reminder.kind == "digest" else "reminder"
    if reminder.kind in OFFER_REMINDER_KINDS:
        name = "offer"
    if reminder.kind in PROGRAMME_REMINDER_KINDS:
        name = "programme"
        context["link"] = _programme_link(reminder, settings)
    variables = {"locale": locale, "alliance": alliance, **context}
    return Rendered(
        subject=subject,
        text=_templates().get_template(f"{name}.txt").render(variables),
        html=_templates().get_template(f"{name}.html").render(variables),
    )


def _pair_context(
    session: Session,
    alliance: Alliance,
    reminder: Reminder,
    settings: Settings,
    now: datetime | None,
    unit_id: int | None,
) -> dict[str, Any]:
    mentorship = session.get_one(Mentorship, reminder.mentorship_id)
    viewer = unit_id if unit_id is not None else _recipient_unit(reminder, mentorship)
    locale = reminder.locale if reminder.locale in LOCALES else DEFAULT_LOCALE
    # The pair as the recipient may see them (privacy.md): another unit's person through the
    # cross-unit allowlist, and withheld where they have not consented.
    craftsman, apprentice = (
        shown_or_withheld(person, viewer, locale)
        for person in (mentorship.craftsman, mentorship.apprentice)
    )
    link = None
    if reminder.recipient_role in ("craftsman", "apprentice"):
        token = make_token(
            settings.secret_key,
            SummaryLink(mentorship.id, reminder.period_index or 1, reminder.recipient_role),
        )
        link = f"{settings.base_url.rstrip('/')}/summary/{token}"
    due = reminder.due_on.isoformat() if reminder.due_on else ""
    return {
        "subject": {"due": due, "craftsman": craftsman["name"], "apprentice": apprentice["name"]},
        "craftsman": craftsman,
        "apprentice": apprentice,
        "craftsman_unit": craftsman["unit"],
        "apprentice_unit": apprentice["unit"],
        "period": reminder.period_index,
        "due": due,
        "timezone": alliance.timezone,
        "link": link,
        "opening": OPENINGS[reminder.kind],
        "overview": f"{settings.base_url.rstrip('/')}/",
        "overdue_periods": overdue_periods(mentorship, local_today(alliance.timezone, now)),
    }


def _offer_context(
    session: Session, alliance: Alliance, reminder: Reminder, settings: Settings
) -> dict[str, Any]:
    """The offer's email: the apprentice as another unit may see them (privacy.md: name, unit,
    wanted skills), the expiry in the alliance's time, and the signed link to answer."""
    offer = session.get_one(Offer, reminder.offer_id)
    token = make_offer_token(settings.secret_key, offer.id)
    expires = offer.expires_at.astimezone(ZoneInfo(alliance.timezone)).strftime("%Y-%m-%d %H:%M")
    locale = reminder.locale if reminder.locale in LOCALES else DEFAULT_LOCALE
    apprentice = offered_apprentice(offer, locale)
    return {
        "subject": {"apprentice": apprentice["name"]},
        "craftsman": offer.craftsman,
        **apprentice_context(apprentice),
        "expires": expires,
        "timezone": alliance.timezone,
        "opening": OPENINGS[reminder.kind],
        "link": f"{settings.base_url.rstrip('/')}/offer/{token}",
    }


_NOT_A_UNIT = -1  # a recipient of no unit of the pair: both people are of "another unit"


def _recipient_unit(reminder: Reminder, mentorship: Mentorship) -> int | None:
    """The unit an email's recipient speaks for: one of the pair's (their own unit), a unit's
    HR contact (the unit whose contact address it is), or none for a coordinator (who sees
    what the work needs)."""
    if reminder.recipient_role == "coordinator":
        return None
    if reminder.recipient_role == "craftsman":
        return mentorship.craftsman.unit_id
    if reminder.recipient_role == "apprentice":
        return mentorship.apprentice.unit_id
    units = {
        person.unit_id
        for person in (mentorship.craftsman, mentorship.apprentice)
        if person.unit.contact_email == reminder.recipient
    }
    return units.pop() if len(units) == 1 else _NOT_A_UNIT


def offered_apprentice(offer: Offer, locale: str) -> dict[str, Any]:
    """The offered apprentice as the craftsman (of another unit) may see them, in the offer's
    email and on its page (privacy.md: name, unit, wanted skills)."""
    return shown_or_withheld(offer.apprentice, offer.craftsman.unit_id, locale)


def apprentice_context(shown: dict[str, Any]) -> dict[str, Any]:
    """The template variables of an offered apprentice (:func:`offered_apprentice`)."""
    return {
        "apprentice": shown,
        "apprentice_unit": shown["unit"],
        "wants": [(skill["name"], skill["level"]) for skill in shown.get("skills", [])],
    }


def shown_or_withheld(
    person: Craftsman | Apprentice, viewer: int | None, locale: str
) -> dict[str, Any]:
    """A person of the pair as the recipient of ``viewer``'s unit may see them (name, unit;
    ``access.shown_to_unit``), or their name withheld and their unit only."""
    shown = access.shown_to_unit(person, viewer)
    if shown is None:
        return {
            "name": translate(locale, "person.withheld"),
            "unit": {"id": person.unit_id, "name": person.unit.name},
        }
    return shown


def _programme_link(reminder: Reminder, settings: Settings) -> str | None:
    """The check-in form's signed link (check_in, to one of the pair); else none."""
    if reminder.kind != "check_in" or reminder.recipient_role not in ("craftsman", "apprentice"):
        return None
    from matcher.services.programme_reminders import occasion_of

    token = make_check_in_token(
        settings.secret_key,
        CheckInLink(
            reminder.mentorship_id or 0, occasion_of(reminder.period_index), reminder.recipient_role
        ),
    )
    return f"{settings.base_url.rstrip('/')}/check-in/{token}"


def _digest_context(session: Session, alliance: Alliance, reminder: Reminder) -> dict[str, Any]:
    today = reminder.due_on or local_today(alliance.timezone)
    week_start = datetime.combine(
        today - timedelta(days=7), datetime.min.time(), ZoneInfo(alliance.timezone)
    )
    pending = session.scalar(
        select(func.count())
        .select_from(Proposal)
        .join(MatchRun, MatchRun.id == Proposal.match_run_id)
        .where(
            MatchRun.alliance_id == alliance.id,
            MatchRun.status == RUN_PROPOSED,
            Proposal.status == PROPOSAL_PENDING,
        )
    )
    active = (Mentorship.alliance_id == alliance.id, Mentorship.status == MENTORSHIP_ACTIVE)
    overdue = session.scalar(
        select(func.count()).select_from(Mentorship).where(*active, Mentorship.next_due_on < today)
    )
    escalated = session.scalar(
        select(func.count())
        .select_from(Mentorship)
        .where(*active, Mentorship.next_due_on <= today - timedelta(days=ESCALATE_AFTER_DAYS))
    )
    summaries = session.scalar(
        select(func.count())
        .select_from(TrainingSummary)
        .join(Mentorship, Mentorship.id == TrainingSummary.mentorship_id)
        .where(Mentorship.alliance_id == alliance.id, TrainingSummary.submitted_at >= week_start)
    )
    return {
        "subject": {},
        "today": today.isoformat(),
        "pending_proposals": pending or 0,
        "overdue_pairs": overdue or 0,
        "escalated_pairs": escalated or 0,
        "summaries_this_week": summaries or 0,
        "escalate_after_days": ESCALATE_AFTER_DAYS,
    }


def build_message(
    reminder: Reminder, rendered: Rendered, settings: Settings, now: datetime
) -> EmailMessage:
    """The MIME message: text and HTML alternatives, a stable Message-ID.

    Header values pass ``header_safe``: a line break in a name or address (rows written before
    single-line fields were validated) would otherwise make the ``email`` package refuse to build.
    """
    message = EmailMessage()
    message["Subject"] = header_safe(rendered.subject)
    message["From"] = header_safe(settings.mail_from)
    message["To"] = header_safe(reminder.recipient)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(reminder, settings.mail_from)
    message["X-Matcher-Reminder"] = str(reminder.id)
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
