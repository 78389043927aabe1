"""The operator's ``matcher`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.migrations import head_revision
from matcher.models import Alliance, ApiKey, Apprentice, Craftsman, Skill, Unit, User
from matcher.services.api_keys import hash_key
from tests import factories


def test_keys_create_prints_the_key_alone_and_stores_only_its_hash(
    app: Flask, session: Session
) -> None:
    alliance = factories.alliance(session, "EMCA")
    factories.unit(session, alliance, "HZDJ")
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["keys", "create", "--role", "hr", "--alliance", "EMCA", "--unit", "HZDJ"]
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("mk_") and "\n" not in key and len(key) > 40
    stored = session.scalars(select(ApiKey)).one()
    assert stored.key_hash == hash_key(key) and key not in (stored.key_hash, stored.prefix)
    assert stored.role == "hr" and stored.unit_id is not None

    client = app.test_client()
    response = client.get(
        f"/api/v1/units/{stored.unit_id}", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200


def test_a_rotated_key_is_listed_then_revoked_and_refused(app: Flask, session: Session) -> None:
    factories.alliance(session, "EMCA")
    session.commit()
    runner = app.test_cli_runner()
    old = runner.invoke(args=["keys", "create", "--role", "admin", "--name", "old"]).stdout.strip()
    new = runner.invoke(args=["keys", "create", "--role", "admin", "--name", "new"]).stdout.strip()
    listed = runner.invoke(args=["keys", "list"]).stdout
    assert "old" in listed and "new" in listed and old not in listed and "revoked" not in listed
    old_id = session.scalars(select(ApiKey.id).where(ApiKey.name == "old")).one()
    assert runner.invoke(args=["keys", "revoke", str(old_id)]).exit_code == 0
    client = app.test_client()
    assert (
        client.get("/api/v1/alliances", headers={"Authorization": f"Bearer {old}"}).status_code
        == 401
    )
    assert (
        client.get("/api/v1/alliances", headers={"Authorization": f"Bearer {new}"}).status_code
        == 200
    )
    assert "revoked" in runner.invoke(args=["keys", "list"]).stdout


def test_keys_create_checks_the_scope(app: Flask, session: Session) -> None:
    factories.alliance(session, "EMCA")
    session.commit()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["keys", "create", "--role", "coordinator"]).exit_code != 0
    assert (
        runner.invoke(args=["keys", "create", "--role", "hr", "--alliance", "EMCA"]).exit_code != 0
    )
    missing = runner.invoke(args=["keys", "create", "--role", "coordinator", "--alliance", "NOPE"])
    assert missing.exit_code != 0 and "NOPE" in missing.output
    assert session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_demo_loads_a_realistic_alliance_once(app: Flask, session: Session) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo"]).exit_code == 0
    units = session.scalar(select(func.count()).select_from(Unit)) or 0
    craftsmen = session.scalar(select(func.count()).select_from(Craftsman)) or 0
    apprentices = session.scalar(select(func.count()).select_from(Apprentice)) or 0
    assert session.scalar(select(func.count()).select_from(Alliance)) == 1
    assert 10 <= units <= 14 and craftsmen >= 40 and apprentices >= 100
    assert session.scalar(
        select(func.count()).select_from(Skill).where(Skill.parent_id.is_not(None))
    )
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0
    assert session.scalar(select(func.count()).select_from(Craftsman)) == craftsmen


def test_db_upgrade_creates_the_schema_from_the_console_script(tmp_path: Path) -> None:
    env = {**os.environ, "MATCHER_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    matcher = Path(sys.executable).with_name("matcher")
    result = subprocess.run(
        [str(matcher), "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert f"database schema at {head_revision()}" in result.stderr


@pytest.mark.parametrize("email", ["co\nord@x.cn", "c@x\u2028.cn", "co\tord@x.cn", "c\x85@x.cn"])
def test_users_create_refuses_an_email_that_is_not_one_line(
    app: Flask, session: Session, email: str
) -> None:
    factories.alliance(session, "EMCA")
    session.commit()
    result = app.test_cli_runner().invoke(
        args=["users", "create", "--email", email, "--alliance", "EMCA"],
        env={"MATCHER_USER_PASSWORD": "long-enough-password"},
    )
    assert result.exit_code != 0 and "email" in result.output
    assert session.scalar(select(func.count()).select_from(User)) == 0
