"""Coordinators who sign in to the web pages: created by the operator, passwords stored hashed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from matcher.db import utcnow
from matcher.errors import Conflict, ValidationFailed
from matcher.models import LOCALES, Alliance, User
from matcher.text import single_line_problem

MIN_PASSWORD_LENGTH = 10
_DUMMY_HASH = generate_password_hash("not-a-password-of-anyone")


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    alliance: Alliance,
    locale: str = "zh-CN",
    update: bool = False,
) -> User:
    """A coordinator of ``alliance``; the password is kept only as a salted scrypt hash.

    With ``update``, an existing user of that email gets the new password and locale instead.
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
