"""flask-smorest customised once: problem+json errors, bearer auth in the docs, pagination."""

from __future__ import annotations

import json
import math
from typing import Any

import flask_smorest
import marshmallow as ma
from flask import Response
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from matcher.api.problems import ProblemSchema, http_exception_problem

MAX_PAGE = 1_000_000  # far beyond any real list; keeps OFFSET inside 64 bits on PostgreSQL


class Api(flask_smorest.Api):  # type: ignore[misc]
    """The service's Api: errors are RFC 9457 problems, documented with their schema."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Every HTTP error, webargs' validation errors included, as problem+json."""
        return http_exception_problem(error)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """Blueprint base for every resource of the API."""

    def query(self, schema: type[ma.Schema]) -> Any:
        """Query-string arguments; an unknown one is an error, never silently ignored."""
        return self.arguments(schema, location="query", unknown=ma.RAISE)


class PageArgsSchema(ma.Schema):
    """``page`` and ``page_size`` of every list endpoint."""

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE))
    page_size = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))


def paginate(
    session: Session, stmt: Select[Any], args: dict[str, Any]
) -> tuple[list[Any], int, dict[str, str]]:
    """One page of ``stmt`` and an ``X-Pagination`` header saying where it lies in the whole."""
    page, page_size = args["page"], args["page_size"]
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(page_size).offset((page - 1) * page_size)).unique())
    total_pages = max(1, math.ceil(total / page_size))
    meta: dict[str, int] = {
        "total": total,
        "total_pages": total_pages,
        "page": page,
        "page_size": page_size,
        "first_page": 1,
        "last_page": total_pages,
    }
    if page > 1:
        meta["previous_page"] = min(page - 1, total_pages)
    if page < total_pages:
        meta["next_page"] = page + 1
    return items, 200, {"X-Pagination": json.dumps(meta)}
