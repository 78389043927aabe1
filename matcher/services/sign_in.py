"""Sign-in throttling: failed attempts counted per account and per client address, in the database.

Every worker of every host shares the counts in ``sign_in_throttles``. An attempt is counted
*before* its password is checked (one upsert per subject, in the transaction that the caller
commits before hashing): two requests at once therefore get different counts, and the one that
reaches the limit locks the subject for the other. A right password then takes its attempt back
(the account's count starts over; the address's drops by one). A subject is locked once it has
``free`` failures within ``WINDOW``; each further failure doubles the wait, up to ``MAX_WAIT``.

Accounts are keyed by the email as typed (normalised), so an unknown email is throttled exactly
like a known one and the answers reveal nothing about which accounts exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from matcher.models import SignInThrottle, User
from matcher.services.review import audit

ACCOUNT, ADDRESS = "account", "address"
WINDOW = timedelta(minutes=15)  # failures older than this (and than the lock) are forgotten
ACCOUNT_FREE_FAILURES = 5
# Looser: a whole factory may sign its coordinators in from one NAT address.
ADDRESS_FREE_FAILURES = 50
FIRST_WAIT = timedelta(seconds=30)  # after the free failures; doubled by each further one
MAX_WAIT = timedelta(minutes=15)
FREE_FAILURES = {ACCOUNT: ACCOUNT_FREE_FAILURES, ADDRESS: ADDRESS_FREE_FAILURES}
MAX_SUBJECT = 254  # the column's length
# Counts change in the database only: rows a caller holds are not matched in Python (the
# statements are set-based, and a held row's times may be older than the database's).
SET_BASED = {"synchronize_session": False}
PRUNE_BATCH = 1000  # stale rows deleted by one fresh count; the next fresh count takes more


def account_subject(email: str) -> str:
    """How an account is named in the throttle: its email as ``authenticate_user`` reads it
    (control characters, which no stored email has and PostgreSQL text refuses, left out)."""
    return _printable(email.strip().lower())


def address_subject(address: str) -> str:
    """How a client address is named in the throttle."""
    return _printable(address)


def _printable(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable())[:MAX_SUBJECT]


def wait_after(failures: int, free: int) -> timedelta | None:
    """How long further attempts wait after ``failures`` of a subject allowed ``free``."""
    if failures < free:
        return None
    return min(MAX_WAIT, FIRST_WAIT * (1 << min(failures - free, 16)))


@dataclass(frozen=True)
class Lock:
    """A subject that this attempt locked."""

    scope: str
    subject: str
    failures: int
    until: datetime


@dataclass(frozen=True)
class Gate:
    """The throttle's answer to one attempt: wait ``retry_after`` seconds, or go on."""

    retry_after: int | None
    locks: tuple[Lock, ...] = ()

    @property
    def refused(self) -> bool:
        return self.retry_after is not None


def _count(
    session: Session, *, scope: str, subject: str, now: datetime
) -> tuple[int, datetime | None]:
    """Count one attempt of ``subject`` unless it is locked; returns its failures and the end of
    its lock (then the attempt is not counted). One statement, row-locked until commit."""
    table = SignInThrottle
    locked = table.locked_until > now
    # Forgotten: no failure within the window, and no lock that ended within it either.
    stale = and_(
        table.last_failure_at < now - WINDOW,
        or_(table.locked_until.is_(None), table.locked_until < now - WINDOW),
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(
        scope=scope, subject=subject, failures=1, last_failure_at=now, locked_until=None
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.scope, table.subject],
        set_={
            "failures": case((locked, table.failures), (stale, 1), else_=table.failures + 1),
            "last_failure_at": case((locked, table.last_failure_at), else_=now),
            "locked_until": case((locked, table.locked_until), else_=None),
        },
    ).returning(table.failures, table.locked_until)
    failures, locked_until = session.execute(stmt).one()
    if locked_until is not None and locked_until > now:
        return failures, locked_until
    return failures, None


def _seconds(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def claim_attempt(session: Session, *, email: str, address: str, now: datetime) -> Gate:
    """Count a sign-in attempt of ``email`` from ``address`` before its password is checked.

    Refused (with the seconds to wait) while the address or the account is locked; otherwise
    counted, and the attempt that reaches a limit locks its subject for the ones after it. The
    caller commits before checking the password, so concurrent attempts see the count.
    """
    locks: list[Lock] = []
    # The address first: an address that is locked touches no account's count.
    for scope, subject in ((ADDRESS, address_subject(address)), (ACCOUNT, account_subject(email))):
        failures, locked_until = _count(session, scope=scope, subject=subject, now=now)
        if locked_until is not None:  # (an address lock this attempt set is kept in locks)
            return Gate(retry_after=_seconds(locked_until, now), locks=tuple(locks))
        if failures == 1:  # a fresh count: forget what nobody remembers any more
            _prune(session, now=now)
        wait = wait_after(failures, FREE_FAILURES[scope])
        if wait is not None:
            until = now + wait
            session.execute(
                update(SignInThrottle)
                .where(SignInThrottle.scope == scope, SignInThrottle.subject == subject)
                .values(locked_until=until),
                execution_options=SET_BASED,
            )
            locks.append(Lock(scope, subject, failures, until))
    return Gate(retry_after=None, locks=tuple(locks))


def _prune(session: Session, *, now: datetime) -> None:
    """Delete counts nobody remembers any more, a bounded batch at a time. Rows that another
    attempt holds are skipped (PostgreSQL's SKIP LOCKED): two prunes never wait for each other,
    so they cannot deadlock with the upserts around them."""
    forgotten = (
        select(SignInThrottle.scope, SignInThrottle.subject)
        .where(
            SignInThrottle.last_failure_at < now - WINDOW,
            or_(
                SignInThrottle.locked_until.is_(None),
                SignInThrottle.locked_until < now - WINDOW,
            ),
        )
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        delete(SignInThrottle).where(
            tuple_(SignInThrottle.scope, SignInThrottle.subject).in_(forgotten)
        ),
        execution_options=SET_BASED,
    )


def record_failure(session: Session, *, email: str, address: str, gate: Gate, actor: str) -> None:
    """Audit a failed attempt and the locks it set (its count was taken by ``claim_attempt``).

    The same statements run whether or not the account exists.
    """
    subject = account_subject(email)
    user_id, alliance_id = _audited_user(session, subject)
    audit(
        session,
        alliance_id=alliance_id,
        actor=actor,
        action="sign_in.failed",
        object_type="user",
        object_id=user_id,
        data={"email": subject, "address": address_subject(address)},
    )
    _audit_locks(session, gate, alliance_id=alliance_id, user_id=user_id, actor=actor)


def record_refusal(session: Session, *, email: str, gate: Gate, actor: str) -> None:
    """A refused attempt is no failure (no password was checked), but a lock it set is audited."""
    if gate.locks:
        user_id, alliance_id = _audited_user(session, account_subject(email))
        _audit_locks(session, gate, alliance_id=alliance_id, user_id=user_id, actor=actor)


def lift_account_lock(session: Session, *, email: str, actor: str) -> bool:
    """The operator's order: the account's failures are forgotten and its wait ends now (the
    coordinator called in, the password was reset). Audited; ``False`` when nothing was held."""
    subject = account_subject(email)
    lifted = session.execute(
        delete(SignInThrottle)
        .where(SignInThrottle.scope == ACCOUNT, SignInThrottle.subject == subject)
        .returning(SignInThrottle.failures),
        execution_options=SET_BASED,
    ).all()
    if lifted:
        user_id, alliance_id = _audited_user(session, subject)
        audit(
            session,
            alliance_id=alliance_id,
            actor=actor,
            action="sign_in.unlocked",
            object_type="user",
            object_id=user_id,
            data={"email": subject, "failures": lifted[0].failures},
        )
    return bool(lifted)


def _audited_user(session: Session, subject: str) -> tuple[int, int | None]:
    """The audit's object for an account: the user's id and alliance, or 0 and none."""
    user = session.execute(
        select(User.id, User.alliance_id).where(User.email == subject)
    ).one_or_none()
    return (user.id, user.alliance_id) if user else (0, None)


def record_success(session: Session, *, user: User, address: str, gate: Gate, actor: str) -> None:
    """The right password: the account's count starts over and the address's attempt is taken
    back (a lock of the address that this attempt set stays, and is audited)."""
    session.execute(
        delete(SignInThrottle).where(
            SignInThrottle.scope == ACCOUNT, SignInThrottle.subject == account_subject(user.email)
        ),
        execution_options=SET_BASED,
    )
    session.execute(
        update(SignInThrottle)
        .where(
            SignInThrottle.scope == ADDRESS,
            SignInThrottle.subject == address_subject(address),
            SignInThrottle.failures > 0,
        )
        .values(failures=SignInThrottle.failures - 1),
        execution_options=SET_BASED,
    )
    address_locks = Gate(None, tuple(lock for lock in gate.locks if lock.scope == ADDRESS))
    _audit_locks(session, address_locks, alliance_id=user.alliance_id, user_id=user.id, actor=actor)


def _audit_locks(
    session: Session, gate: Gate, *, alliance_id: int | None, user_id: int, actor: str
) -> None:
    for lock in gate.locks:
        audit(
            session,
            alliance_id=alliance_id,
            actor=actor,
            action="sign_in.locked",
            object_type="user",
            object_id=user_id,
            data={
                "scope": lock.scope,
                "subject": lock.subject,
                "failures": lock.failures,
                "until": lock.until.isoformat(),
            },
        )
