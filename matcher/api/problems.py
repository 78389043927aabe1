"""The one place that turns errors into RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Flask, Response, json, request
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import HTTPException

from matcher.errors import DomainError

log = logging.getLogger(__name__)
PROBLEM_MIMETYPE = "application/problem+json"


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, the body of every error response."""

    type = ma.fields.String(metadata={"description": "URI naming the kind of problem"})
    title = ma.fields.String(metadata={"description": "Short summary of the kind of problem"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong in this request"})
    errors = ma.fields.Dict(
        metadata={"description": "Field-level messages, keyed like the request body"}
    )


def problem(
    status: int,
    *,
    title: str,
    detail: str,
    slug: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:matcher:problem:{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    response = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _field_errors(messages: Any) -> Any:
    """webargs nests messages by location ({"json": {...}}); clients want the body's own keys."""
    if not isinstance(messages, dict):
        return messages
    merged: dict[str, Any] = {}
    for location, errors in messages.items():
        if isinstance(errors, dict):
            merged.update(errors)
        else:
            merged[location if location != "json" else "_body"] = errors
    return merged


def http_exception_problem(error: HTTPException) -> Response:
    """Werkzeug and webargs errors (400, 404, 405, 413, 422, ...) as problems."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or _field_errors(data.get("messages"))
    detail = data.get("message") or error.description or error.name
    if data.get("message"):
        pass  # the layer that refused said why
    elif status == 422 and errors:
        detail = "The request has invalid fields; see 'errors'. Nothing was written."
    elif status == 400 and errors:
        detail = "The request body is not valid JSON; nothing was written."
    headers = dict(data.get("headers") or {})
    if status == 405 and error.get_headers():
        headers.update({k: v for k, v in error.get_headers() if k.lower() == "allow"})
    return problem(status, title=error.name, detail=str(detail), errors=errors, headers=headers)


def register_error_handlers(app: Flask) -> None:
    """Every error leaves the service as problem+json, including the unexpected ones."""

    @app.errorhandler(DomainError)
    def _domain(error: DomainError) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="matcher"'} if error.status == 401 else None
        return problem(
            error.status,
            title=error.title,
            detail=error.detail,
            slug=error.slug,
            errors=error.errors,
            headers=headers,
        )

    @app.errorhandler(IntegrityError)
    def _integrity(error: IntegrityError) -> Response:
        # A concurrent writer got there first (unique key); the client may simply retry.
        log.warning("integrity error on %s %s: %s", request.method, request.path, error.orig)
        return problem(
            409,
            title="Conflict",
            slug="conflict",
            detail="The data changed under this request (a concurrent write); nothing was "
            "written. Retry the request.",
        )

    @app.errorhandler(OperationalError)
    def _database_down(error: OperationalError) -> Response:
        log.error("database unavailable on %s %s: %s", request.method, request.path, error)
        return problem(
            503,
            title="Service Unavailable",
            slug="database-unavailable",
            detail="The database is not reachable right now; nothing was written. Retry later.",
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return http_exception_problem(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(
            500,
            title="Internal Server Error",
            detail="An unexpected error occurred; it has been logged. Nothing was written.",
        )
