"""The app factory: ``create_app`` and the ``register_*`` steps it runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, abort, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from matcher import extensions
from matcher.config import Settings
from matcher.db import make_engine, make_session_factory
from matcher.logs import configure_logging


def create_app(config: Mapping[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """Build the WSGI app; ``config`` overrides settings read from ``MATCHER_*`` variables."""
    # The package's name, not this module's: the app's logger is the "matcher" logger, as before.
    from matcher.api import API_PREFIX

    app = Flask("matcher", instance_relative_config=True, instance_path=instance_path)
    settings = Settings.from_env(overrides=config).with_instance_secret_key(Path(app.instance_path))
    database_url = settings.database_url
    if not database_url:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{Path(app.instance_path) / 'matcher.db'}"
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.env == "testing",
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        API_TITLE="Craftsman mentorship matcher",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable
    if settings.proxy_hops:
        # request.remote_addr: the address the Nth proxy from the right saw, not the header's
        # leftmost entry, which the client writes itself.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops)  # type: ignore[method-assign]
    configure_logging(
        settings.log_level,
        settings.log_format or ("json" if settings.env == "production" else "text"),
    )

    engine = make_engine(database_url)
    app.extensions["matcher"] = extensions.MatcherState(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        read_session_factory=make_session_factory(
            engine.execution_options(isolation_level="AUTOCOMMIT")
        ),
    )
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    """Request lifecycle: a session per request, the caller authenticated before the view,
    bodies held to their limit and every response given its security headers."""
    from matcher.api import API_PREFIX
    from matcher.logs import register_request_ids
    from matcher.metrics import register_metrics
    from matcher.rate_limits import install_rate_limiter
    from matcher.security import ChunkedBodyLimit, security_headers
    from matcher.services.api_keys import authenticate

    matcher_state = extensions.state(app)
    body_limit = ChunkedBodyLimit(app.wsgi_app, matcher_state.settings.max_body_bytes)
    app.wsgi_app = body_limit  # type: ignore[method-assign]
    app.after_request(security_headers)
    limiter = install_rate_limiter(
        app, engine=matcher_state.engine, per_minute=matcher_state.settings.rate_limit_per_minute
    )
    app.teardown_appcontext(extensions.close_db)
    register_request_ids(app)
    register_metrics(app)
    app.before_request(_refuse_non_utf8_urls)

    @app.before_request
    def _authenticate() -> Response | None:
        path = request.path
        if path.startswith(API_PREFIX + "/") and path != f"{API_PREFIX}/openapi.json":
            authorization = request.headers.get("Authorization")
            # One statement checks the key and counts the request (matcher.rate_limits).
            verdict = limiter.authenticate(authorization)
            if verdict is None:  # no limit, or the count could not be written
                g.principal = authenticate(extensions.db(), authorization)
                return None
            g.principal = verdict.principal
            return verdict.refusal()  # a 429 problem once the key's budget is spent
        return None


def _refuse_non_utf8_urls() -> None:
    """A URL whose bytes are not UTF-8 names nothing here: 404, rather than Werkzeug's silent
    U+FFFD that would make ``/craftsmen/%FF`` and ``/craftsmen/%FE`` the same person."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")  # gunicorn, Werkzeug
    if raw is None:  # other servers: PATH_INFO holds the path's bytes as latin-1 (PEP 3333)
        data = environ.get("PATH_INFO", "").encode("latin-1", "replace")
    else:
        data = unquote_to_bytes(raw)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        abort(404)


def register_blueprints(app: Flask) -> None:
    """Mount the API resources, the docs, the health endpoints and the web pages."""
    from matcher.api import register_api
    from matcher.api.health import blp as health_blp
    from matcher.web import register_web

    register_api(app)
    app.register_blueprint(health_blp)
    register_web(app)


def register_error_handlers(app: Flask) -> None:
    """Every error as RFC 9457 problem+json."""
    from matcher.api.problems import register_error_handlers as register

    register(app)


def register_commands(app: Flask) -> None:
    """The ``matcher`` CLI's app-bound commands."""
    from matcher.cli import register_cli

    register_cli(app)
