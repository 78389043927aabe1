"""Coordinator sign-in with email and password: a signed session cookie, and sign-out."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Blueprint, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from matcher.extensions import db
from matcher.models import User
from matcher.services.users import authenticate_user
from matcher.web import page_errors, render_page

blp = Blueprint("auth", __name__)
page_errors(blp)

USER_KEY = "user_id"
MAX_PASSWORD = 1024  # longer ones are refused before hashing: no scrypt work on megabytes
P = ParamSpec("P")
R = TypeVar("R")


def current_user() -> User | None:
    """The signed-in, still active user of this request, or ``None``."""
    if "user" not in g:
        user_id = session.get(USER_KEY)
        user = db().get(User, user_id) if isinstance(user_id, int) else None
        g.user = user if user is not None and user.active else None
    result: User | None = g.user
    return result


def signed_in_user() -> User:
    """The user of a view behind ``sign_in_required``."""
    user = current_user()
    assert user is not None
    return user


def actor(user: User) -> str:
    """How the audit trail names a decision taken on the pages."""
    return f"user:{user.email}"


def _safe_next(target: str | None) -> str | None:
    """A path on this site to return to after sign-in; anything else (``//evil``) is dropped."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


def sign_in_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Send visitors who are not signed in to the sign-in form, and back here afterwards."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if current_user() is None:
            here = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("overview.index", next=here), 303)
        return view(*args, **kwargs)

    return wrapper


def sign_in_page(*, status: int = 200, failed: bool = False, email: str = "") -> Any:
    """The sign-in form (the page at ``/`` for visitors)."""
    return render_page(
        "web/sign_in.html",
        locale="zh-CN",
        status=status,
        failed=failed,
        email=email,
        next=_safe_next(request.values.get("next")),
    )


@blp.get("/sign-in")
def sign_in_form() -> Response:
    """The form lives at ``/``."""
    return redirect(url_for("overview.index"))


@blp.post("/sign-in")
def sign_in() -> Any:
    """Check email and password; on success start a fresh session."""
    email = request.form.get("email", "").strip()[:254]
    password = request.form.get("password", "")
    user = None
    if email and password and len(password) <= MAX_PASSWORD:
        user = authenticate_user(db(), email=email, password=password)
    if user is None:
        return sign_in_page(status=401, failed=True, email=email)
    db().commit()  # last_sign_in_at
    # A new session: nothing set before sign-in (a planted CSRF token included) carries over.
    session.clear()
    session.permanent = True
    session[USER_KEY] = user.id
    return redirect(_safe_next(request.form.get("next")) or url_for("overview.index"), 303)


@blp.post("/sign-out")
def sign_out() -> Response:
    """End the session."""
    session.clear()
    return redirect(url_for("overview.index"), 303)
