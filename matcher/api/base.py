"""flask-smorest customised once: problem+json errors, bearer auth in the docs, pagination."""

from __future__ import annotations

import functools
import http
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import flask_smorest
import marshmallow as ma
import orjson
from apispec import BasePlugin
from flask import Response
from sqlalchemy import Integer, Row, Select, Subquery, bindparam, func, select
from sqlalchemy.orm import Session
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import HTTPException

from matcher.api.problems import PROBLEM_MIMETYPE, ProblemSchema, http_exception_problem
from matcher.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    page_count,
    page_offset,
)

# Bodies of this API nest three levels at most; Python's JSON parser recurses once per level
# and fails (RecursionError, a 500) near a thousand. Deeper bodies are refused before parsing.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")
WRITES = frozenset({"post", "put", "patch", "delete"})


class ErrorResponsesPlugin(BasePlugin):
    """Documents, on every operation, the error statuses the service's own layers can answer.

    Which statuses an operation may answer follows from its shape, not from its view:

    - every one: 401 (no or bad key), 403 (the key's role may not do this), 503 (database down);
    - with ids or names in the path: 404 (absent, or outside the key's scope);
    - with a JSON body: 400 (missing or not JSON), 413 (over the size limit), 415 (sent as
      another media type), 422 (invalid fields);
    - with query arguments: 422;
    - writes: 409 (a concurrent write got there first; services raise it for stale state too).

    Statuses particular to one operation (412, 428, a 404 for ids in the query) are documented
    at the view with ``@blp.alt_response``. There is no catch-all ``default`` response, so the
    OpenAPI document lists exactly what a client has to handle (and the fuzz test holds the
    service to it).
    """

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        rule = kwargs.get("rule")
        has_path_arguments = bool(rule.arguments) if rule is not None else "{" in (path or "")
        for method, operation in (operations or {}).items():
            if method.upper() not in flask_smorest.Blueprint.HTTP_METHODS:
                continue
            statuses = [401, 403, 503]
            if has_path_arguments:
                statuses.append(404)
            if "requestBody" in operation:
                statuses += [400, 413, 415, 422]
            if any(p.get("in") == "query" for p in operation.get("parameters", [])):
                statuses.append(422)
            if method.lower() in WRITES:
                statuses.append(409)
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                if status not in responses and str(status) not in responses:
                    responses[status] = http.HTTPStatus(status).name


class Api(flask_smorest.Api):  # type: ignore[misc]
    """The service's Api: errors are RFC 9457 problems, documented with their schema."""

    ERROR_SCHEMA = ProblemSchema
    # No catch-all: ErrorResponsesPlugin documents each operation's error statuses one by one.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _init_spec(self, *, extra_plugins: Any = None, **options: Any) -> None:
        plugins = [*(extra_plugins or ()), ErrorResponsesPlugin()]
        super()._init_spec(extra_plugins=plugins, **options)

    def _register_responses(self) -> None:
        """The error responses, as flask-smorest names them (``NOT_FOUND``, ...), documented
        as what they are: ``application/problem+json`` bodies of :class:`ProblemSchema`."""
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["content"] = {PROBLEM_MIMETYPE: {"schema": self.ERROR_SCHEMA}}
            self.spec.components.response(status.name, response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Every HTTP error, webargs' validation errors included, as problem+json."""
        return http_exception_problem(error)


class Parser(FlaskParser):
    """webargs' parser, except that a JSON body is required where one is documented.

    webargs reads an absent body, or one sent as another media type, as ``{}``: a PATCH of
    form data would answer 200 having changed nothing. Every body of this API is required.
    """

    def _raw_load_json(self, req: Any) -> Any:
        """The body parsed as JSON, refused with 400 where the parser itself would fail."""
        if not is_json_request(req):
            return webargs_core.missing
        text = req.get_data(cache=True).decode("utf-8")  # webargs answers UnicodeDecodeError
        if json_depth(text) > MAX_JSON_DEPTH:
            _bad_body(
                f"The JSON body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels",
                f"Nested deeper than {MAX_JSON_DEPTH} levels.",
            )
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise  # webargs' own answer: 400, or no body at all when empty
        except ValueError:  # an integer of more digits than Python converts (4300)
            _bad_body("The JSON body holds a number too long to read", "Number too long.")

    def load_json(self, req: Any, schema: ma.Schema) -> Any:
        data = super().load_json(req, schema)
        if data is not webargs_core.missing:
            return data
        if not is_json_request(req) and (req.content_length or req.get_data(cache=True)):
            abort(
                415,
                message="Send the body as application/json (it came as "
                f"{req.mimetype or 'no media type'}); nothing was written.",
            )
        abort(400, message="This request needs a JSON body; nothing was written.")


def json_depth(text: str, *, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply arrays and objects nest in a JSON text, found without parsing it: brackets
    counted outside strings. Stops counting once past ``limit`` (the text is refused then)."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def _bad_body(message: str, field_message: str) -> Any:
    abort(400, message=f"{message}; nothing was written.", messages={"json": [field_message]})


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """Blueprint base for every resource of the API."""

    ARGUMENTS_PARSER = Parser()

    def arguments(self, schema: type[ma.Schema] | ma.Schema, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's, with a schema class made an instance once, here: given a class,
        webargs makes one per request, a tenth of a list page's time. Schemas keep no state
        between loads, so one instance serves every request."""
        instance = schema() if isinstance(schema, type) else schema
        return super().arguments(instance, *args, **kwargs)

    def query(self, schema: type[ma.Schema]) -> Any:
        """Query-string arguments; an unknown one is an error, never silently ignored."""
        return self.arguments(schema, location="query", unknown=ma.RAISE)


class PageArgsSchema(ma.Schema):
    """``page`` and ``page_size`` of every list endpoint."""

    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=MAX_PAGE))
    page_size = ma.fields.Integer(
        load_default=DEFAULT_PAGE_SIZE, validate=ma.validate.Range(min=1, max=MAX_PAGE_SIZE)
    )


def page_rows(
    session: Session,
    stmt: Select[Any],
    args: dict[str, Any],
    params: Mapping[str, Any] | None = None,
    *,
    widen: Callable[[Subquery], Select[Any]] | None = None,
) -> tuple[list[Row[Any]], dict[str, str]]:
    """One page of ``stmt``'s rows and an ``X-Pagination`` header saying where it lies.

    The total comes with the page (a count as a column ``page_total``, which callers
    ignore): one round trip, not two. Only a page past the end, which has no row to
    carry it, costs a separate count.

    ``widen`` adds what a page shows but the count and the cut need not carry (names, long
    texts, children): it gets the narrow page as a subquery ``page`` and selects its columns
    and more, in the page's order. Still one round trip, and the wide columns are read for the
    page's rows only.

    With ``params``, ``stmt`` is one built once (module level or cached) with those bind
    parameters, and ``widen`` a module-level function: the paged form is built once too, and a
    request binds values only.
    """
    page, page_size = args["page"], args["page_size"]
    if params is None:
        counted = _paged(stmt, widen)
        stmt_params: dict[str, Any] = {}
    else:
        counted = _paged_once(stmt, widen)
        stmt_params = dict(params)
    bound = {
        **stmt_params,
        "page_limit": page_size,
        "page_offset": page_offset(page, page_size),
    }
    rows = list(session.execute(counted, bound).all())
    if rows:
        total = int(rows[0].page_total)
    elif page == 1:
        total = 0
    else:
        count = select(func.count()).select_from(stmt.order_by(None).subquery())
        total = session.scalar(count, stmt_params) or 0
    total_pages = page_count(total, page_size)
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
    return rows, {"X-Pagination": json.dumps(meta)}


def _paged(
    stmt: Select[Any], widen: Callable[[Subquery], Select[Any]] | None = None
) -> Select[Any]:
    """``stmt`` with the page's total as a column ``page_total``, cut by ``page_limit`` and
    ``page_offset``, then widened."""
    # The total as an uncorrelated subquery, which both databases run once per statement; a
    # window count (count(*) OVER ()) would read and sort every row of the list before cutting
    # the page, where an index can give the page in order (5x the cost on a run's proposals).
    total = select(func.count()).select_from(stmt.order_by(None).subquery("counted"))
    paged = (
        stmt.add_columns(total.scalar_subquery().label("page_total"))
        .limit(bindparam("page_limit", type_=Integer))
        .offset(bindparam("page_offset", type_=Integer))
    )
    return paged if widen is None else widen(paged.subquery("page"))


# Bounded: keyed by statements built once each, of which the API has a few dozen.
_paged_once = functools.lru_cache(maxsize=256)(_paged)


def paginate(
    session: Session, stmt: Select[Any], args: dict[str, Any]
) -> tuple[list[Any], int, dict[str, str]]:
    """One page of the ORM objects ``stmt`` selects, for the response schema to dump."""
    rows, headers = page_rows(session, stmt, args)
    return [row[0] for row in rows], 200, headers


def json_list(items: list[dict[str, Any]], headers: dict[str, str]) -> Response:
    """A page of items the service built as plain dicts, keyed as the documented schema.

    The busiest lists are read as plain rows and written straight to JSON: building ORM objects
    and dumping them through marshmallow cost most of their time (``bench/load.py``). The
    schema still documents the response, and the tests hold these lists to it.
    """
    return json_item(items, headers)


def json_item(item: Any, headers: dict[str, str] | None = None, status: int = 200) -> Response:
    """One item (or a page of them, :func:`json_list`) the service built as plain data, keyed
    as the documented schema, written straight to JSON (``status``, 200 unless said).

    orjson writes what ``json.dumps(ensure_ascii=False)`` with ISO 8601 dates would (UTF-8,
    dates and times as ``isoformat()`` gives them, floats shortest round-trip), at a fraction of
    the cost: encoding was a fifth of a list page's time (``bench/request_path.py --profile``).
    """
    return Response(orjson.dumps(item), status, headers, mimetype="application/json")
