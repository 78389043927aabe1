"""Signed, expiring links to the summary form ``/summary/{token}``, the check-in form
``/check-in/{token}`` and the offer page ``/offer/{token}``."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from matcher.errors import NotFound
from matcher.i18n import Message

SALT = "training-summary-link"
MAX_AGE_SECONDS = 90 * 24 * 3600  # a reminder link works for 90 days


@dataclass(frozen=True)
class SummaryLink:
    """What a link lets its holder do: hand in one period's summary as one of the pair."""

    mentorship_id: int
    period: int
    author: str  # craftsman | apprentice


def make_token(secret_key: str, link: SummaryLink) -> str:
    """A URL-safe token signed with the service's secret."""
    serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
    return serializer.dumps([link.mentorship_id, link.period, link.author])


def read_token(secret_key: str, token: str, max_age: int = MAX_AGE_SECONDS) -> SummaryLink:
    """The link a token stands for; a forged or expired one is ``NotFound``, saying which."""
    serializer = URLSafeTimedSerializer(secret_key, salt=SALT)
    try:
        mentorship_id, period, author = serializer.loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise NotFound("This link has expired; ask your coordinator for a new one.") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise NotFound("This link is not valid.") from exc
    return SummaryLink(mentorship_id=int(mentorship_id), period=int(period), author=str(author))


CHECK_IN_SALT = "check-in-link"


@dataclass(frozen=True)
class CheckInLink:
    """What a check-in link lets its holder do: answer one occasion's check-in as one of the
    pair."""

    mentorship_id: int
    occasion: str  # first_summary | mid_term
    author: str  # craftsman | apprentice


def make_check_in_token(secret_key: str, link: CheckInLink) -> str:
    """A URL-safe token signed with the service's secret (another salt than summaries')."""
    serializer = URLSafeTimedSerializer(secret_key, salt=CHECK_IN_SALT)
    return serializer.dumps([link.mentorship_id, link.occasion, link.author])


def read_check_in_token(secret_key: str, token: str, max_age: int = MAX_AGE_SECONDS) -> CheckInLink:
    """The check-in link a token stands for; a forged or expired one is ``NotFound``."""
    serializer = URLSafeTimedSerializer(secret_key, salt=CHECK_IN_SALT)
    try:
        mentorship_id, occasion, author = serializer.loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise NotFound("This link has expired; ask your coordinator for a new one.") from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise NotFound("This link is not valid.") from exc
    return CheckInLink(int(mentorship_id), str(occasion), str(author))


OFFER_SALT = "offer-link"
# An offer waits at most 30 days (offer_expires_days); the link outlives it by a little so that
# a late click is told the offer expired, not that the link is broken.
OFFER_MAX_AGE_SECONDS = 31 * 24 * 3600


def make_offer_token(secret_key: str, offer_id: int) -> str:
    """A URL-safe token for the offer page, signed with the service's secret (its own salt)."""
    return URLSafeTimedSerializer(secret_key, salt=OFFER_SALT).dumps([offer_id])


def read_offer_token(secret_key: str, token: str, max_age: int = OFFER_MAX_AGE_SECONDS) -> int:
    """The offer id a token stands for; a forged or expired one is ``NotFound``."""
    serializer = URLSafeTimedSerializer(secret_key, salt=OFFER_SALT)
    try:
        (offer_id,) = serializer.loads(token, max_age=max_age)
        return int(offer_id)
    except SignatureExpired as exc:
        raise NotFound(Message("offer.link_expired")) from exc
    except (BadSignature, ValueError, TypeError) as exc:
        raise NotFound(Message("offer.link_invalid")) from exc
