"""``matcher import`` reads ``cross_unit_consent_at``: a time or a date (the alliance's midnight),
to the alliance's current notice version; ``withdrawn`` withdraws it, empty keeps it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from matcher.models import Apprentice, Craftsman
from tests import factories


def _import(app: Flask, path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", "HZDJ"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_import_column_gives_keeps_and_withdraws_consent(
    app: Flask, session: Session, tmp_path: Path
) -> None:
    alliance = factories.alliance(session, "EMCA", consent_notice_version="2026-03")
    factories.skills(session, alliance)
    factories.unit(session, alliance, "HZDJ")
    session.commit()
    path = tmp_path / "apprentices.csv"
    _import(
        app,
        path,
        "external_id,name,wants,cross_unit_consent_at\n"
        "A-1,甲,焊接:3,2026-03-01T09:30:00+08:00\n"
        "A-2,乙,焊接:3,2026-03-02\n"
        "A-3,丙,焊接:3,\n",
    )
    people = {a.external_id: a for a in session.scalars(select(Apprentice))}
    assert people["A-1"].cross_unit_consent_at == datetime(2026, 3, 1, 1, 30, tzinfo=UTC)
    assert people["A-2"].cross_unit_consent_at == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert people["A-1"].cross_unit_consent_version == "2026-03"
    assert people["A-3"].cross_unit_consent_at is None
    # A file without the column (or with an empty cell) keeps what was recorded.
    assert "3 unchanged" in _import(
        app, path, "external_id,name,wants\nA-1,甲,焊接:3\nA-2,乙,焊接:3\nA-3,丙,焊接:3\n"
    )
    output = _import(
        app,
        path,
        "external_id,name,wants,cross_unit_consent_at\nA-1,甲,焊接:3,withdrawn\nA-2,乙,焊接:3,撤回\n",
    )
    assert "2 updated" in output
    session.expire_all()
    assert {a.cross_unit_consent_at for a in session.scalars(select(Apprentice))} == {None}


def test_a_consent_cell_that_is_no_time_names_its_line(
    app: Flask, session: Session, tmp_path: Path
) -> None:
    alliance = factories.alliance(session, "EMCA")
    factories.skills(session, alliance)
    factories.unit(session, alliance, "HZDJ")
    session.commit()
    path = tmp_path / "craftsmen.csv"
    path.write_text(
        "external_id,name,skills,cross_unit_consent_at\nC-1,甲,焊接:5,2026-02-30\nC-2,乙,焊接:5,昨天\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", "HZDJ"])
    assert result.exit_code != 0
    assert "line 2" in result.output and "line 3" in result.output
    assert "given_at" in result.output
    assert session.scalars(select(Craftsman)).first() is None
