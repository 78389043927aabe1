"""Logging: one JSON object per line (production) or readable text, each with the request id.

The request id comes from the caller's ``X-Request-ID`` (when it looks like one) or is made here;
it is echoed in the response and put on every log line written while the request runs, so one
request can be followed through the API's, the services' and the database's messages.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
HANDLER_NAME = "matcher"
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "request_id", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := request_id.get():
            entry["request_id"] = rid
        entry.update(
            {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS and k != "color"}
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class DemoteToDebug(logging.Filter):
    """A library's routine INFO lines, told by their message's start, logged as DEBUG instead.

    Alembic says "Context impl SQLiteImpl." and "Will assume transactional DDL." every time a
    migration context is made: on every ``/readyz`` probe and every ``matcher db upgrade``, even
    with nothing to migrate. Its "Running upgrade ..." lines, which report work, stay at INFO.
    """

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not str(record.msg).startswith(self.prefixes):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


# logger name -> the start of each of its routine lines
ROUTINE_LINES = {
    "alembic.runtime.migration": ("Context impl ", "Will assume "),
    "alembic.runtime.plugins": ("setup plugin ",),  # alembic 1.16+: one per plugin, each command
}


def quiet_routine_lines() -> None:
    """Install the ``ROUTINE_LINES`` filters once per process."""
    for name, prefixes in ROUTINE_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DemoteToDebug) for f in logger.filters):
            logger.addFilter(DemoteToDebug(*prefixes))


def configure_logging(level: str, fmt: str) -> None:
    """Root logging for the process: ``fmt`` is "json" or "text"; libraries' routine lines at
    DEBUG, so that INFO holds one line per request, per email, per run and per job that did work."""
    quiet_routine_lines()
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.addFilter(_RequestIdFilter())
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler: others (a test runner's capture, say) stay.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != HANDLER_NAME] + [handler]
    root.setLevel(level)


access_log = logging.getLogger("matcher.access")


def register_request_ids(app: Flask) -> None:
    """Give every request an id, echo it, and log one access line per request."""

    @app.before_request
    def _start() -> None:
        sent = request.headers.get("X-Request-ID", "")
        rid = sent if VALID_REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        g.request_id = rid
        g.request_id_token = request_id.set(rid)
        g.access_started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        rid = g.get("request_id")
        if rid:
            response.headers["X-Request-ID"] = rid
            caller = g.get("principal")
            access_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.access_started) * 1000, 2),
                    "caller": caller.label if caller is not None else None,
                },
            )
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id.reset(token)
