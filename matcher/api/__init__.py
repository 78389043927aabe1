"""The REST API under ``/api/v1``: one flask-smorest blueprint per resource."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui_bundle
from flask import Blueprint as FlaskBlueprint
from flask import Flask, Response, send_from_directory
from werkzeug.routing import BaseConverter, IntegerConverter

from matcher.api.base import Api
from matcher.api.fields import MAX_ID

API_PREFIX = "/api/v1"


class IdConverter(IntegerConverter):
    """Path ids: positive and within the database's integer range (else 404, never a 500)."""

    def __init__(self, map: Any, **kwargs: Any) -> None:  # noqa: A002 - werkzeug's name
        super().__init__(map, min=1, max=MAX_ID, **kwargs)


class NameConverter(BaseConverter):
    """Names in paths (external ids, skill names): 1–100 characters, no slash, no NUL."""

    regex = r"[^/\x00]{1,100}"


class ExternalIdConverter(BaseConverter):
    """A person's external id in a path: a name, but never ``bulk``.

    ``.../craftsmen/bulk`` is the bulk endpoint (POST); without this, a PUT there would upsert a
    person whose external id is "bulk", a method the bulk path does not have (the OpenAPI
    document's concrete path wins over the templated one, and so does the service).
    Anything else up to the next slash is matched, so the view checks it with the body's
    ``external_id`` field (422 naming the field, not a 404 that hides why).
    """

    regex = r"(?!bulk(?![^/]))[^/]+"


def register_api(app: Flask) -> Api:
    """Create the Api, mount every resource and the self-hosted docs page."""
    from matcher.api import (
        activity,
        alliances,
        availability,
        match_runs,
        mentorships,
        notification_channels,
        offers,
        people,
        preferences,
        privacy,
        programme,
        proposals,
        reminders,
        skills,
        units,
        webhooks,
    )
    from matcher.rate_limits import RateLimitDocs

    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["name"] = NameConverter
    app.url_map.converters["external_id"] = ExternalIdConverter
    api = Api(
        app,
        spec_kwargs={
            "info": {"description": "Cross-unit mentorship matching for craftsman alliances."},
            "security": [{"bearerAuth": []}],
            "extra_plugins": [RateLimitDocs()],
        },
    )
    api.register_converter(
        IdConverter, lambda _c: {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    )
    api.register_converter(
        NameConverter, lambda _c: {"type": "string", "minLength": 1, "maxLength": 100}
    )
    api.register_converter(
        ExternalIdConverter,
        lambda _c: {"type": "string", "minLength": 1, "maxLength": 100, "not": {"enum": ["bulk"]}},
    )
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "A key from `matcher keys create`"},
    )
    for module in (
        alliances,
        units,
        people,
        preferences,
        availability,
        skills,
        match_runs,
        proposals,
        mentorships,
        offers,
        programme,
        activity,
        reminders,
        webhooks,
        notification_channels,
        privacy,
    ):
        for blueprint in module.BLUEPRINTS:
            api.register_blueprint(blueprint, url_prefix=API_PREFIX)
    app.register_blueprint(_docs_blueprint())
    return api


def _docs_blueprint() -> FlaskBlueprint:
    """``/docs``: Swagger UI served from the installed package, so it works offline; its start
    script is a file too, so the pages' Content-Security-Policy (no inline script) holds here."""
    static = Path(swagger_ui_bundle.swagger_ui_path)
    docs = FlaskBlueprint(
        "docs", __name__, static_folder=str(static), static_url_path="/docs/static"
    )

    @docs.get("/docs")
    def page() -> Response:
        html = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Craftsman matcher API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body></html>"""
        return Response(html, mimetype="text/html")

    @docs.get("/docs/start.js")
    def start() -> Response:
        script = (
            f'window.ui = SwaggerUIBundle({{url: "{API_PREFIX}/openapi.json", '
            'dom_id: "#swagger-ui"});\n'
        )
        return Response(script, mimetype="text/javascript")

    @docs.get("/docs/static/<path:filename>")
    def asset(filename: str) -> Response:
        return send_from_directory(static, filename)

    return docs
