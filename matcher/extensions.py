"""Per-app state (settings, engine) and per-request state (session, caller)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from matcher.config import Settings
from matcher.services.access import Principal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatcherState:
    """What ``create_app`` builds once and every request uses."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    # Sessions of GET and HEAD requests: no BEGIN and no ROLLBACK around their reads.
    read_session_factory: sessionmaker[Session]


def state(app: Flask | None = None) -> MatcherState:
    """The service state of ``app`` (default: the current app)."""
    result: MatcherState = (app or current_app).extensions["matcher"]
    return result


READ_METHODS = frozenset({"GET", "HEAD"})


def db() -> Session:
    """The request's session; the request boundary commits it, teardown closes it.

    A read request's session runs in autocommit: on PostgreSQL (READ COMMITTED) each statement
    sees its own snapshot inside a transaction anyway, and SQLite's driver begins none for reads,
    so the BEGIN and ROLLBACK round trips would buy nothing. Reads never write.
    """
    if "db_session" not in g:
        matcher_state = state()
        read = has_request_context() and request.method in READ_METHODS
        factory = matcher_state.read_session_factory if read else matcher_state.session_factory
        g.db_session = factory()
    session: Session = g.db_session
    return session


def close_db(_exc: BaseException | None = None) -> None:
    """Close the request's session; whatever was not committed is rolled back."""
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        try:
            session.close()
        except Exception:
            # The connection died under the request (database restarted): the request has its
            # answer already and nothing uncommitted survives; drop the connection, not the app.
            log.warning("closing a request's session failed; its connection is discarded")
            with contextlib.suppress(Exception):
                session.invalidate()


def principal() -> Principal:
    """The caller authenticated for this request."""
    caller: Principal = g.principal
    return caller
