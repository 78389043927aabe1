"""API keys: one definition of a valid key, for the request and the rate limiter alike."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.errors import DomainError, NotFound, Unauthorized
from matcher.models import ApiKey, AuditEvent
from matcher.rate_limits import RateLimiter
from matcher.services import api_keys
from matcher.services.access import Principal
from tests import factories


def _limiter(app: Flask) -> RateLimiter:
    from matcher.extensions import state

    return RateLimiter(state(app).engine.url.render_as_string(hide_password=False), per_minute=100)


def test_authenticate_and_the_limiter_agree_on_every_kind_of_key(
    app: Flask, session: Session
) -> None:
    """Valid, revoked, unknown: the usual authentication and the limiter's single statement
    build the same caller, or refuse alike."""
    alliance = factories.alliance(session, "EMCA")
    unit = factories.unit(session, alliance, "U1")
    keys = {
        "admin": api_keys.create_key(session, role="admin"),
        "coordinator": api_keys.create_key(session, role="coordinator", alliance=alliance),
        "hr": api_keys.create_key(session, role="hr", unit=unit),
        "revoked": api_keys.create_key(session, role="hr", unit=unit),
    }
    api_keys.revoke_key(session, key_id=keys["revoked"].api_key.id, actor="test")
    session.commit()
    limiter = _limiter(app)
    try:
        for name, created in keys.items():
            header = f"Bearer {created.secret}"
            if name == "revoked":
                with pytest.raises(Unauthorized):
                    api_keys.authenticate(session, header)
                with pytest.raises(Unauthorized):
                    limiter.authenticate(header)
                continue
            row = created.api_key
            expected = Principal(
                role=row.role, alliance_id=row.alliance_id, unit_id=row.unit_id, key_id=row.id
            )
            assert api_keys.authenticate(session, header) == expected
            verdict = limiter.authenticate(header)
            assert verdict is not None and verdict.principal == expected
        for header in ("Bearer mk_unknown", "Basic abc", None):
            with pytest.raises(Unauthorized):
                api_keys.authenticate(session, header)
            with pytest.raises(Unauthorized):
                limiter.authenticate(header)
    finally:
        limiter.dispose()


def test_a_revocation_is_audited_once(session: Session) -> None:
    alliance = factories.alliance(session, "EMCA")
    unit = factories.unit(session, alliance, "U1")
    created = api_keys.create_key(session, role="hr", unit=unit, name="HR system")
    session.commit()
    key_id = created.api_key.id
    api_keys.revoke_key(session, key_id=key_id, actor="cli")
    first = session.get_one(ApiKey, key_id).revoked_at
    api_keys.revoke_key(session, key_id=key_id, actor="cli")  # idempotent
    session.commit()
    assert session.get_one(ApiKey, key_id).revoked_at == first is not None
    events = session.scalars(select(AuditEvent).where(AuditEvent.object_type == "api_key")).all()
    assert [(e.action, e.object_id, e.actor, e.alliance_id) for e in events] == [
        ("api_key.revoke", key_id, "cli", alliance.id)
    ]
    assert events[0].data == {"role": "hr", "prefix": created.api_key.prefix, "unit_id": unit.id}


def test_revoking_a_key_never_made_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        api_keys.revoke_key(session, key_id=2**31 - 1, actor="cli")
    assert session.scalars(select(AuditEvent)).all() == []


@pytest.mark.parametrize(
    ("role", "alliance", "unit"),
    [
        ("admin", "EMCA", None),
        ("coordinator", None, None),
        ("coordinator", "EMCA", "U1"),
        ("hr", "EMCA", None),
        ("hr", None, "U1"),
        ("hr", "NOPE", "U1"),
        ("hr", "EMCA", "NOPE"),
        ("guest", None, None),
    ],
)
def test_a_key_is_created_with_its_roles_scope_only(
    session: Session, role: str, alliance: str | None, unit: str | None
) -> None:
    factories.unit(session, factories.alliance(session, "EMCA"), "U1")
    session.commit()
    with pytest.raises(DomainError):
        api_keys.create_key_by_codes(session, role=role, alliance_code=alliance, unit_code=unit)
    session.rollback()
    assert session.scalars(select(ApiKey)).all() == []


def test_the_cli_revocation_is_audited(app: Flask, session: Session) -> None:
    factories.alliance(session, "EMCA")
    session.commit()
    runner = app.test_cli_runner()
    runner.invoke(args=["keys", "create", "--role", "coordinator", "--alliance", "EMCA"])
    key_id = session.scalars(select(ApiKey.id)).one()
    assert runner.invoke(args=["keys", "revoke", str(key_id)]).exit_code == 0
    missing = runner.invoke(args=["keys", "revoke", "99999"])
    assert missing.exit_code != 0 and "99999" in missing.output
    events = session.scalars(select(AuditEvent)).all()
    assert [(e.action, e.object_id, e.actor) for e in events] == [("api_key.revoke", key_id, "cli")]
