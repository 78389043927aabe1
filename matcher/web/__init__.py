"""Server-rendered pages (Flask + Jinja): the summary form reached from reminder emails.

Every form carries a CSRF token kept in the signed session cookie; a POST without it is refused.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, Flask, abort, render_template, request, session

from matcher.web.i18n import translate

CSRF_FIELD = "csrf_token"


def csrf_token() -> str:
    """This browser session's token, created on first use."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return str(token)


def check_csrf() -> None:
    """400 unless a state-changing request carries the session's token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    sent = request.form.get(CSRF_FIELD) or request.headers.get("X-CSRF-Token") or ""
    expected = session.get(CSRF_FIELD) or ""
    if not expected or not secrets.compare_digest(str(sent), str(expected)):
        abort(400, description="The form's security token is missing or stale; reload the page.")


def render_page(
    template: str, *, locale: str, status: int = 200, **context: Any
) -> tuple[str, int]:
    """A page in ``locale`` with the CSRF token and the translator at hand."""
    html = render_template(
        template,
        locale=locale,
        t=lambda key, **kw: translate(locale, key, **kw),
        csrf_token=csrf_token,
        **context,
    )
    return html, status


def register_web(app: Flask) -> None:
    """Mount the pages; their forms are CSRF-checked."""
    from matcher.web import summary

    pages = (summary.blp,)
    names = {blueprint.name for blueprint in pages}
    for blueprint in pages:
        app.register_blueprint(blueprint)

    @app.before_request
    def _csrf() -> None:
        if request.blueprint in names:
            check_csrf()


__all__ = ["Blueprint", "csrf_token", "register_web", "render_page"]
