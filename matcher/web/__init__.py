"""Server-rendered pages (Flask + Jinja): the summary form reached from reminder emails, and the
coordinator's sign-in, alliance overview and match-run review.

Every form carries a CSRF token kept in the signed session cookie; a POST without it is refused.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, abort, render_template, request, session
from flask_babel import Babel, force_locale, get_translations, gettext
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from matcher.errors import DomainError
from matcher.extensions import db, state
from matcher.i18n import CATALOGS, DEFAULT_LOCALE, N_, Message, catalog_name, install_gettext

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
    """A page in ``locale`` (its ``_()`` texts from that locale's catalog) with the CSRF token at
    hand. Usually the signed-in user's locale; the summary form speaks its recipient's."""
    with force_locale(catalog_name(locale)):
        html = render_template(template, locale=locale, csrf_token=csrf_token, **context)
    return html, status


def say(message: Message) -> str:
    """A service's message in the request's locale."""
    return str(gettext(message.id, **message.params))


def refusal(error: DomainError) -> str:
    """A service's refusal as the reader reads it: its message in their language when it has
    one, else its detail as the API gives it."""
    return say(error.message) if error.message else error.detail


def local_time(moment: datetime | None, timezone: str) -> str:
    """A stored UTC time as the alliance's wall-clock time."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _locale() -> str:
    """The signed-in user's language, else zh-CN."""
    from matcher.web.auth import current_user  # auth imports this module

    user = current_user()
    return user.locale if user else DEFAULT_LOCALE


def _babel_locale() -> str:
    """Flask-Babel's locale of a request: the signed-in user's (in the catalogs' spelling)."""
    return catalog_name(_locale())


def page_errors(blueprint: Blueprint) -> None:
    """A page's errors (a missing CSRF token, a run out of scope, ...) as HTML, not problem+json."""

    def _render(status: int, message: str) -> tuple[str, int]:
        from matcher.web.auth import current_user

        return render_page(
            "web/message.html",
            locale=_locale(),
            status=status,
            message=message,
            user=current_user(),
        )

    @blueprint.errorhandler(DomainError)
    def _domain(error: DomainError) -> tuple[str, int]:
        if error.status == 404:
            return _render(404, gettext("error.not_found"))
        return _render(error.status, error.detail)

    @blueprint.errorhandler(IntegrityError)
    def _concurrent(_error: IntegrityError) -> tuple[str, int]:
        # A concurrent writer took the same row first; nothing of this request is kept.
        db().rollback()
        return _render(409, gettext("error.concurrent"))

    @blueprint.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[str, int]:
        key = {400: N_("error.csrf"), 404: N_("error.not_found")}.get(error.code or 500)
        return _render(error.code or 500, gettext(key) if key else error.name)


def register_web(app: Flask) -> None:
    """Mount the pages; their forms are CSRF-checked and their cookie kept from scripts."""
    from matcher.api import IdConverter
    from matcher.web import auth, offers, overview, programme, runs, summary

    # Ids in page paths (/runs/<id:run_id>) are bounded like the API's: a number beyond the
    # database's integer range is a 404, never a 5xx. Registered here too, for the pages'
    # sake, whatever order the API and the pages are mounted in.
    app.url_map.converters["id"] = IdConverter
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Sent over HTTPS only when the service is reached over HTTPS (not on a dev laptop).
        SESSION_COOKIE_SECURE=state(app).settings.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
    )
    app.add_template_filter(local_time, "local_time")
    # The pages' texts: gettext catalogs through Flask-Babel (``_()`` in templates, ``gettext``
    # in views), in the signed-in user's locale; visitors read zh-CN.
    Babel(
        app,
        default_locale=catalog_name(DEFAULT_LOCALE),
        default_translation_directories=str(CATALOGS),
        locale_selector=_babel_locale,
        configure_jinja=False,  # its _() would trust translations as markup; ours escapes them
    )
    install_gettext(app.jinja_env, lambda _context, msgid: get_translations().ugettext(msgid))
    pages = (summary.blp, auth.blp, overview.blp, runs.blp, programme.blp, offers.blp)
    names = {blueprint.name for blueprint in pages}
    for blueprint in pages:
        app.register_blueprint(blueprint)
    app.register_blueprint(programme.public)  # no form, no session: nothing to CSRF-check

    @app.before_request
    def _csrf() -> None:
        if request.blueprint in names:
            check_csrf()


__all__ = [
    "Blueprint",
    "csrf_token",
    "page_errors",
    "refusal",
    "register_web",
    "render_page",
    "say",
]
