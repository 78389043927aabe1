"""Coordinators who sign in to the web pages: created by the operator, passwords stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from matcher.db import utcnow
from matcher.errors import Conflict, ValidationFailed
from matcher.models import LOCALES, Alliance, User, WebSession
from matcher.services.review import audit
from matcher.text import single_line_problem

MIN_PASSWORD_LENGTH = 10
SESSION_LIFETIME = timedelta(hours=12)  # then the coordinator signs in again, whatever happens
_DUMMY_HASH = generate_password_hash("not-a-password-of-anyone")


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    alliance: Alliance,
    locale: str = "zh-CN",
    update: bool = False,
    actor: str = "cli",
) -> User:
    """A coordinator of ``alliance``; the password is kept only as a salted scrypt hash.

    With ``update``, an existing user of that email gets the new password and locale instead,
    and all of that user's sessions end (audited as done by ``actor``).
    """
    email = email.strip().lower()
    # It becomes the To: of the digests: one line, like every email the API takes.
    if "@" not in email or len(email) > 254 or single_line_problem(email):
        raise ValidationFailed("Invalid email.", errors={"email": ["Not a valid email address."]})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            "Password too short.",
            errors={"password": [f"At least {MIN_PASSWORD_LENGTH} characters."]},
        )
    if locale not in LOCALES:
        raise ValidationFailed("Unknown locale.", errors={"locale": [f"One of {list(LOCALES)}."]})
    existing = session.scalars(select(User).where(User.email == email)).one_or_none()
    if existing is not None:
        if not update or existing.alliance_id != alliance.id:
            raise Conflict(f"A user {email} exists already.")
        existing.password_hash = generate_password_hash(password)
        existing.locale = locale
        existing.active = True
        # Whoever signed in with the old password (perhaps the reason for the change) is out.
        end_user_sessions(session, user=existing, actor=actor, reason="password_changed")
        session.flush()
        return existing
    user = User(
        email=email,
        password_hash=generate_password_hash(password),
        alliance_id=alliance.id,
        locale=locale,
        active=True,
    )
    session.add(user)
    session.flush()
    return user


def authenticate_user(session: Session, *, email: str, password: str) -> User | None:
    """The active user with this email and password, or ``None`` (same answer for either miss)."""
    user = session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()
    # Hash even for an unknown email, so the answer takes as long and reveals nothing.
    password_ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not user.active or not password_ok:
        return None
    user.last_sign_in_at = utcnow()
    return user


def _session_hash(token: str) -> str:
    """What the table keeps of a session id: reading the table gives no usable cookie."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_web_session(session: Session, *, user: User, now: datetime) -> str:
    """A new session of ``user`` for 12 hours; returns the id for the cookie."""
    token = secrets.token_urlsafe(32)
    # The user's own expired rows go now: the table holds about one row per live browser.
    session.execute(
        delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now)
    )
    session.add(
        WebSession(
            id_hash=_session_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    session.flush()
    return token


def web_session_user(session: Session, *, token: str, now: datetime) -> User | None:
    """The active user whose unexpired, not ended session ``token`` is, else ``None``."""
    return session.scalars(
        select(User)
        .join(WebSession, WebSession.user_id == User.id)
        .where(
            WebSession.id_hash == _session_hash(token),
            WebSession.expires_at > now,
            User.active.is_(True),
        )
    ).one_or_none()


def end_web_session(session: Session, *, token: str) -> None:
    """Sign-out: this session's id opens nothing any more (a copied cookie included)."""
    session.execute(delete(WebSession).where(WebSession.id_hash == _session_hash(token)))


def end_user_sessions(session: Session, *, user: User, actor: str, reason: str) -> int:
    """End every session of ``user`` (password changed, operator's order); audited.

    Returns how many were open.
    """
    ended = session.execute(
        delete(WebSession).where(WebSession.user_id == user.id).returning(WebSession.id_hash)
    ).all()
    audit(
        session,
        alliance_id=user.alliance_id,
        actor=actor,
        action="user.sessions_ended",
        object_type="user",
        object_id=user.id,
        data={"email": user.email, "reason": reason, "sessions": len(ended)},
    )
    return len(ended)
