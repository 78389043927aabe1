"""The ``retention`` job (privacy.md): erase people inactive for the alliance's
``retention_months`` and in no mentorship since, and delete old sent emails' bodies."""

from __future__ import annotations

import logging
from typing import Any

from jobs import JobContext
from matcher.errors import Conflict
from matcher.services.people import APPRENTICE, CRAFTSMAN, get_person
from matcher.services.privacy import alliances, erase_person, expired_email_files, expired_people

log = logging.getLogger(__name__)
ACTOR = "retention job"


def retention(ctx: JobContext) -> dict[str, Any]:
    """Each expired person erased in a transaction of its own (claimed by compare-and-set, so
    two schedulers erase each once); then the expired ``.eml`` bodies deleted."""
    counts = {"craftsmen_erased": 0, "apprentices_erased": 0, "email_bodies_deleted": 0}
    with ctx.session_factory() as session:
        for alliance in alliances(session):
            for kind, counter in (
                (CRAFTSMAN, "craftsmen_erased"),
                (APPRENTICE, "apprentices_erased"),
            ):
                for person_id in expired_people(session, kind=kind, alliance=alliance, now=ctx.now):
                    person = get_person(session, kind=kind, person_id=person_id)
                    try:
                        erase_person(session, kind=kind, person=person, actor=ACTOR)
                        session.commit()
                    except Conflict:  # erased meanwhile (another scheduler), or paired again
                        session.rollback()
                        continue
                    counts[counter] += 1
        for path in expired_email_files(
            session,
            folder=ctx.instance_path / "outbox",
            mail_from=ctx.settings.mail_from,
            now=ctx.now,
        ):
            path.unlink(missing_ok=True)
            counts["email_bodies_deleted"] += 1
    return counts
