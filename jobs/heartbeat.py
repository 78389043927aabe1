"""The active scheduler's sign of life (``matcher.services.heartbeat``)."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

from jobs import JobContext
from matcher.db import session_scope
from matcher.services.heartbeat import beat

STARTED_AT = datetime.now(UTC)  # when this scheduler process started


def heartbeat(ctx: JobContext) -> dict[str, Any]:
    """Write the heartbeat row as of the job's time."""
    with session_scope(ctx.session_factory) as session:
        beat(
            session, now=ctx.now, started_at=STARTED_AT, host=socket.gethostname(), pid=os.getpid()
        )
    return {"beat_at": ctx.now.isoformat()}
