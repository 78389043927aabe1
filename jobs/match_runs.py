"""Solve queued match runs outside the web workers, with progress visible to the API."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from jobs import JobContext
from matcher.db import session_scope, utcnow
from matcher.models import RUN_FAILED, RUN_PROPOSED, RUN_RUNNING, MatchRun
from matcher.services.matching import claim_queued_run, execute_match_run

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 1.0  # at most one progress write per second


def solve_queued_runs(ctx: JobContext) -> dict[str, Any]:
    """Claim and solve queued runs until none is left; each run commits on its own."""
    solved = failed = 0
    while True:
        with session_scope(ctx.session_factory) as session:
            run = claim_queued_run(session)
            if run is None:
                break
            # Committed before the solve: other schedulers and the API see it running, and
            # the progress writer's own transactions can update it.
            session.commit()
            run_id = run.id
            status = _solve(ctx, session, run)
        # Logged once committed: whoever reads the log can read the run.
        log.info("match run %s: %s", run_id, status)
        if status == RUN_PROPOSED:
            solved += 1
        else:
            failed += 1
    return {"solved": solved, "failed": failed}


def _solve(ctx: JobContext, session: Session, run: MatchRun) -> str:
    """Solve one claimed run; an unexpected error is recorded on the run, never left running."""
    run_id = run.id
    try:
        execute_match_run(session, run=run, progress=_progress_writer(ctx, run_id))
    except Exception:
        log.exception("match run %s crashed", run_id)
        session.rollback()
        session.execute(
            update(MatchRun)
            .where(MatchRun.id == run_id)
            .values(
                status=RUN_FAILED,
                error="Internal error while solving; the operator's log has details.",
                progress={"stage": "failed", "fraction": 1.0},
                updated_at=utcnow(),
            )
        )
        return RUN_FAILED
    return run.status


def _progress_writer(ctx: JobContext, run_id: int) -> Any:
    """Write progress in its own short transaction, so that GET /match-runs/{id} sees it."""
    last = 0.0

    def write(stage: str, fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < PROGRESS_EVERY_SECONDS:
            return
        last = now
        with session_scope(ctx.session_factory) as session:
            session.execute(
                update(MatchRun)
                .where(MatchRun.id == run_id, MatchRun.status == RUN_RUNNING)
                .values(
                    progress={"stage": stage, "fraction": round(fraction, 3)},
                    updated_at=utcnow(),
                )
            )

    return write
