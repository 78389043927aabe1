"""``matcher import``: people from an HR export, through the same validation as the API."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.models import Apprentice, Craftsman
from tests import factories

CRAFTSMEN_CSV = (
    "external_id,name,region,honours,skills,capacity\n"
    "C-1,周建国,杭州,全国劳动模范；大国工匠,数控车:5；嵌线：4,3\n"
    'C-2,"李 ""铁手""",湘潭,,TIG:4,\n'
)


@pytest.fixture
def unit_code(session: Session) -> str:
    alliance = factories.alliance(session, "EMCA")
    factories.skills(session, alliance)
    factories.unit(session, alliance, "HZDJ")
    session.commit()
    return "HZDJ"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_the_encodings_excel_writes(
    app: Flask, session: Session, unit_code: str, tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "craftsmen.csv"
    path.write_bytes(CRAFTSMEN_CSV.encode(encoding))
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", unit_code])
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output
    people = {c.external_id: c for c in session.scalars(select(Craftsman))}
    assert people["C-1"].honours == ["全国劳动模范", "大国工匠"] and people["C-1"].capacity == 3
    assert [(s.name, s.level) for s in people["C-1"].skills] == [
        ("数控车削", 5),
        ("电机绕组嵌线", 4),
    ]
    assert people["C-2"].name == '李 "铁手"' and people["C-2"].capacity == 2
    again = app.test_cli_runner().invoke(args=["import", str(path), "--unit", unit_code])
    assert "2 unchanged" in again.output


def test_xlsx_apprentices(app: Flask, session: Session, unit_code: str, tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["external_id", "name", "wants", "active"])
    sheet.append(["A-1", "陈晓", "数控车削:3；焊接:2:0.5", "是"])
    sheet.append(["A-2", "王芳", "嵌线:4", "否"])
    path = tmp_path / "apprentices.xlsx"
    workbook.save(path)
    result = app.test_cli_runner().invoke(
        args=["import", str(path), "--unit", unit_code, "--alliance", "EMCA"]
    )
    assert result.exit_code == 0, result.output
    people = {a.external_id: a for a in session.scalars(select(Apprentice))}
    assert [(w.name, w.level, w.weight) for w in people["A-1"].wants] == [
        ("数控车削", 3, 1.0),
        ("焊接", 2, 0.5),
    ]
    assert people["A-2"].active is False


def test_a_bad_row_is_named_and_nothing_is_imported(
    app: Flask, session: Session, unit_code: str, tmp_path: Path
) -> None:
    path = tmp_path / "craftsmen.csv"
    path.write_text(
        CRAFTSMEN_CSV + "C-3,坏,杭州,,数控车:9,\nC-4,未知,杭州,,神秘技能:3,\n", encoding="utf-8"
    )
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", unit_code])
    assert result.exit_code != 0
    assert "row 4" in result.output and "level" in result.output
    assert session.scalar(select(func.count()).select_from(Craftsman)) == 0
    path.write_text(CRAFTSMEN_CSV + "C-4,未知,杭州,,神秘技能:3,\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", unit_code])
    assert result.exit_code != 0 and "row 4" in result.output and "神秘技能" in result.output
    assert session.scalar(select(func.count()).select_from(Craftsman)) == 0


def test_unknown_columns_and_unknown_units_are_refused(
    app: Flask, unit_code: str, tmp_path: Path
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("external_id,name,skills,salary\nC-1,甲,焊接:3,100\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", unit_code])
    assert result.exit_code != 0 and "salary" in result.output
    path.write_text("external_id,name,skills\nC-1,甲,焊接:3\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", "NOPE"])
    assert result.exit_code != 0 and "NOPE" in result.output
