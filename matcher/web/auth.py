"""Coordinator sign-in with email and password (throttled), server-side sessions, sign-out.

The signed cookie holds only a random session id; the ``web_sessions`` table says whether it is
still open, so signing out, a password change or the operator (``matcher users sign-out``) end
a session for good, copies of the cookie included.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

from flask import Blueprint, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from matcher.db import utcnow
from matcher.extensions import db
from matcher.models import User
from matcher.services.sign_in import (
    address_subject,
    claim_attempt,
    record_failure,
    record_refusal,
    record_success,
)
from matcher.services.users import (
    authenticate_user,
    end_web_session,
    start_web_session,
    web_session_user,
)
from matcher.web import page_errors, render_page

blp = Blueprint("auth", __name__)
page_errors(blp)

SESSION_KEY = "session_id"
MAX_PASSWORD = 1024  # longer ones are refused before hashing: no scrypt work on megabytes
MAX_EMAIL = 254
MAX_NEXT = 2000  # a return path longer than this is not one of ours
P = ParamSpec("P")
R = TypeVar("R")


def current_user() -> User | None:
    """The signed-in, still active user of this request, or ``None``."""
    if "user" not in g:
        token = session.get(SESSION_KEY)
        g.user = (
            web_session_user(db(), token=token, now=utcnow()) if isinstance(token, str) else None
        )
    result: User | None = g.user
    return result


def signed_in_user() -> User:
    """The user of a view behind ``sign_in_required``."""
    user = current_user()
    if user is None:  # a view without the decorator: a bug, never a page for nobody
        raise RuntimeError("signed_in_user() outside a view behind sign_in_required")
    return user


def actor(user: User) -> str:
    """How the audit trail names a decision taken on the pages."""
    return f"user:{user.email}"


def _local_path(text: str) -> bool:
    """A path of this site that no browser reads as another host or a script: it starts with
    one ``/`` and holds no backslash (read as ``/``), whitespace or control character
    (browsers drop tabs and line breaks, so ``/<TAB>/evil`` is ``//evil``)."""
    if not text.startswith("/") or text.startswith("//"):
        return False
    if any(ch == "\\" or ch.isspace() or not ch.isprintable() for ch in text):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc


def _safe_next(target: str | None) -> str | None:
    """A path on this site to return to after sign-in, else ``None`` (the overview).

    Checked as sent and after each round of percent-decoding, so ``/%2F/evil``, ``/%5Cevil``
    and ``/%09/evil`` (and their doubly encoded forms) are refused like what they decode to.
    """
    if not target or len(target) > MAX_NEXT:
        return None
    text = target
    for _ in range(5):
        if not _local_path(text):
            return None
        decoded = unquote(text)
        if decoded == text:
            return target
        text = decoded
    return None  # still encoded after five rounds: nobody writes a path of ours like that


def sign_in_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Send visitors who are not signed in to the sign-in form, and back here afterwards."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if current_user() is None:
            here = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("overview.index", next=here), 303)
        return view(*args, **kwargs)

    return wrapper


def sign_in_page(
    *, status: int = 200, failed: bool = False, email: str = "", retry_after: int | None = None
) -> Any:
    """The sign-in form (the page at ``/`` for visitors); with ``retry_after``, the 429 that
    says how long to wait."""
    html, status = render_page(
        "web/sign_in.html",
        locale="zh-CN",
        status=status,
        failed=failed,
        email=email,
        wait_minutes=math.ceil(retry_after / 60) if retry_after else None,
        next=_safe_next(request.values.get("next")),
    )
    if retry_after is None:
        return html, status
    return html, status, {"Retry-After": str(retry_after)}


@blp.get("/sign-in")
def sign_in_form() -> Response:
    """The form lives at ``/``."""
    return redirect(url_for("overview.index"))


@blp.post("/sign-in")
def sign_in() -> Any:
    """Check email and password, unless the account or the address must wait (429); on success
    start a fresh session."""
    email = request.form.get("email", "").strip()[:MAX_EMAIL]
    password = request.form.get("password", "")
    address = request.remote_addr or "unknown"  # the socket's peer, or ProxyFix's (config)
    actor = f"sign-in from {address_subject(address)}"
    now = utcnow()
    gate = claim_attempt(db(), email=email, address=address, now=now)
    # Counted before the password is checked, and committed: a concurrent attempt sees it.
    db().commit()
    if gate.refused:
        record_refusal(db(), email=email, gate=gate, actor=actor)
        db().commit()
        return sign_in_page(status=429, email=email, retry_after=gate.retry_after)
    user = None
    if (
        email
        and all(ch.isprintable() for ch in email)  # no stored email has a control character
        and password
        and len(password) <= MAX_PASSWORD
    ):
        user = authenticate_user(db(), email=email, password=password)
    if user is None:
        record_failure(db(), email=email, address=address, gate=gate, actor=actor)
        db().commit()
        return sign_in_page(status=401, failed=True, email=email)
    record_success(db(), user=user, address=address, gate=gate, actor=actor)
    token = start_web_session(db(), user=user, now=now)
    db().commit()  # the session, last_sign_in_at
    # A new session: nothing set before sign-in (a planted CSRF token included) carries over.
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = token
    return redirect(_safe_next(request.form.get("next")) or url_for("overview.index"), 303)


@blp.post("/sign-out")
def sign_out() -> Response:
    """End the session: its id opens nothing any more, wherever the cookie was copied to."""
    token = session.get(SESSION_KEY)
    if isinstance(token, str):
        end_web_session(db(), token=token)
        db().commit()
    session.clear()
    return redirect(url_for("overview.index"), 303)
