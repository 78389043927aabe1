"""``matcher import``: people from an HR export, through the same validation as the API."""

from __future__ import annotations

import codecs
import re
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from matcher.models import Apprentice, ApprenticePreference, Craftsman, Unit
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


ENCODINGS: dict[str, Callable[[str], bytes]] = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-sig": lambda text: text.encode("utf-8-sig"),
    "gb18030": lambda text: text.encode("gb18030"),
    "gbk": lambda text: text.encode("gbk"),
    "utf-16-le-bom": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be-bom": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_csv_in_the_encodings_excel_writes(
    app: Flask, session: Session, unit_code: str, tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "craftsmen.csv"
    path.write_bytes(ENCODINGS[encoding](CRAFTSMEN_CSV))
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
    assert "line 4" in result.output and "level" in result.output
    assert session.scalar(select(func.count()).select_from(Craftsman)) == 0
    path.write_text(CRAFTSMEN_CSV + "C-4,未知,杭州,,神秘技能:3,\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", unit_code])
    assert result.exit_code != 0 and "line 4" in result.output and "神秘技能" in result.output
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


def import_file(app: Flask, path: Path, unit_code: str = "HZDJ") -> Any:
    """Run ``matcher import``; a refusal must be a clean message, never a traceback."""
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", unit_code])
    if result.exit_code != 0:
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
    return result


def people(session: Session) -> list[str]:
    session.expire_all()
    return sorted(session.scalars(select(Craftsman.external_id)))


def xlsx(path: Path, rows: list[list[Any]], *, dimension: str | None = None) -> Path:
    """Write ``rows`` to the first sheet; optionally make its <dimension> claim ``dimension``."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    if dimension is not None:
        rewrite_member(
            path,
            "xl/worksheets/sheet1.xml",
            lambda xml: re.sub(rb'<dimension ref="[^"]*"\s*/>', dimension.encode(), xml),
        )
    return path


def rewrite_member(path: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in members:
            if info.filename == name:
                changed = change(data)
                assert changed != data
                data = changed
            target.writestr(info, data)


CRAFTSMEN_ROWS = [
    ["external_id", "name", "skills"],
    ["C-1", "周建国", "数控车削:5"],
    ["C-2", "李铁手", "焊接:4"],
]


@pytest.mark.parametrize(
    "dimension",
    [
        '<dimension ref="A1:B2"/>',  # smaller than the data: both people all the same
        '<dimension ref="A1:Z300"/>',  # larger, as real Excel files often say
        '<dimension ref="A1:XFD1048576"/>',  # the whole sheet: must not be allocated
        "",  # none at all
    ],
)
def test_xlsx_is_read_as_it_is_whatever_its_dimension_claims(
    app: Flask, session: Session, unit_code: str, tmp_path: Path, dimension: str
) -> None:
    path = xlsx(tmp_path / "c.xlsx", CRAFTSMEN_ROWS, dimension=dimension)
    assert path.stat().st_size < 10_000
    started = time.perf_counter()
    result = import_file(app, path, unit_code)
    assert result.exit_code == 0, result.output
    assert time.perf_counter() - started < 10
    assert people(session) == ["C-1", "C-2"]


def test_trailing_empty_columns_and_cells_are_ignored(
    app: Flask, session: Session, unit_code: str, tmp_path: Path
) -> None:
    csv_path = tmp_path / "c.csv"
    csv_path.write_text(
        "external_id,name,skills,,\nC-1,甲,焊接:3,,\n\nC-2,乙,焊接:2\n", encoding="utf-8"
    )
    assert import_file(app, csv_path, unit_code).exit_code == 0
    rows: list[list[Any]] = [[*r, None, ""] for r in CRAFTSMEN_ROWS]
    rows[0] = [*CRAFTSMEN_ROWS[0], None, None]
    rows.append([])
    rows.append(["C-3", "丙", "焊接:1", None])
    result = import_file(app, xlsx(tmp_path / "c.xlsx", rows), unit_code)
    assert result.exit_code == 0, result.output
    assert people(session) == ["C-1", "C-2", "C-3"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("external_id,name,skills,name\nC-1,甲,焊接:3,乙\n", ["line 1", "'name' appears twice"]),
        ("external_id,,name,skills\nC-1,,甲,焊接:3\n", ["line 1", "column 2 has no name"]),
        ("external_id,name,skills,salary\nC-1,甲,焊接:3,100\n", ["line 1", "salary"]),
        ("\n\nexternal_id,name,skills,salary\nC-1,甲,焊接:3,1\n", ["line 3", "salary"]),
        ("external_id,name,skills\nC-1,甲,焊接:3\nC-2,乙,焊接:3,多余\n", ["line 3", "beyond"]),
        # Blank lines and a quoted cell over two lines are counted: C-3 starts on line 6.
        (
            'external_id,name,skills\n\nC-1,甲,"焊接:3\n数控车削:2"\n\nC-3,丙,焊接:9\n',
            ["line 6", "level"],
        ),
        ("external_id,name,skills\nC-1,甲,焊接:3\n\n\nC-2,乙,焊接:x\n", ["line 5", "level"]),
        ('external_id,name,skills\nC-1,"甲\n乙",焊接:3\n', ["line 2", "name", "single line"]),
        ('external_id,name,skills\nC-1,"甲\r\n乙",焊接:3\n', ["line 2", "name", "single line"]),
        ("external_id,name,skills\nC-1,甲\u2028乙,焊接:3\n", ["line 2", "name", "single line"]),
        ("external_id,name,skills\nC-1,甲\x85乙,焊接:3\n", ["line 2", "name", "single line"]),
        ("external_id,name,skills\nC-1,甲\t乙,焊接:3\n", ["line 2", "name", "single line"]),
        ('external_id,name,skills\n"C\n1",甲,焊接:3\n', ["line 2", "external_id"]),
        ('external_id,name,skills\nC-1,甲,"焊接:3\n"\n"C-2,乙,焊接:3\n', ["line"]),
    ],
)
def test_bad_headers_cells_and_rows_name_the_files_line_and_import_nothing(
    app: Flask,
    session: Session,
    unit_code: str,
    tmp_path: Path,
    content: str,
    expected: list[str],
) -> None:
    path = tmp_path / "c.csv"
    path.write_bytes(content.encode("utf-8"))
    result = import_file(app, path, unit_code)
    assert result.exit_code == 1
    for text in expected:
        assert text in result.output, result.output
    assert people(session) == []


def test_xlsx_problems_name_the_sheet_row(
    app: Flask, session: Session, unit_code: str, tmp_path: Path
) -> None:
    rows: list[list[Any]] = [
        ["external_id", "name", "skills", "skills"],
        ["C-1", "甲", "焊接:3", ""],
    ]
    result = import_file(app, xlsx(tmp_path / "dup.xlsx", rows), unit_code)
    assert result.exit_code == 1 and "row 1" in result.output and "twice" in result.output
    rows = [CRAFTSMEN_ROWS[0], [], CRAFTSMEN_ROWS[1], [], ["C-9", "王\n工", "焊接:3"]]
    result = import_file(app, xlsx(tmp_path / "lb.xlsx", rows), unit_code)
    assert result.exit_code == 1 and "row 5" in result.output and "single line" in result.output
    rows = [CRAFTSMEN_ROWS[0], CRAFTSMEN_ROWS[1], ["C-2", "乙", "焊接:3", "多余"]]
    result = import_file(app, xlsx(tmp_path / "extra.xlsx", rows), unit_code)
    assert result.exit_code == 1 and "row 3" in result.output and "beyond" in result.output
    assert people(session) == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("utf16-without-bom.csv", "external_id,name,skills\nC-1,甲,焊接:3\n".encode("utf-16-le")),
        ("binary.csv", bytes(range(256)) * 8),
        ("png.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"),
        ("empty.csv", b""),
        ("blank.csv", b"\n\n \n"),
        ("text.xlsx", "external_id,name,skills\nC-1,甲,焊接:3\n".encode()),
        ("empty.xlsx", b""),
        ("truncated.xlsx", b"PK\x03\x04" + b"\x00" * 100),
        ("people.txt", b"external_id,name\n"),
    ],
)
def test_files_that_are_not_what_they_say_are_refused_cleanly(
    app: Flask, session: Session, unit_code: str, tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result = import_file(app, path, unit_code)
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert people(session) == []


def test_a_zip_that_is_not_a_workbook_is_refused_cleanly(
    app: Flask, session: Session, unit_code: str, tmp_path: Path
) -> None:
    path = tmp_path / "c.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    assert import_file(app, path, unit_code).exit_code == 1
    broken = xlsx(tmp_path / "broken.xlsx", CRAFTSMEN_ROWS)
    rewrite_member(broken, "xl/worksheets/sheet1.xml", lambda xml: xml[: len(xml) // 2])
    assert import_file(app, broken, unit_code).exit_code == 1
    assert people(session) == []


def test_xlsx_limits_are_checked_before_and_while_reading(
    app: Flask, session: Session, unit_code: str, tmp_path: Path
) -> None:
    # 60 MiB of zeros compress to a few KiB: refused from the zip's directory, unopened.
    bomb = xlsx(tmp_path / "bomb.xlsx", CRAFTSMEN_ROWS)
    with zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\0" * (60 * 2**20))
    assert bomb.stat().st_size < 200_000
    result = import_file(app, bomb, unit_code)
    assert result.exit_code == 1 and "MiB" in result.output
    wide = xlsx(tmp_path / "wide.xlsx", [[*CRAFTSMEN_ROWS[0], *[f"c{i}" for i in range(98)]]])
    result = import_file(app, wide, unit_code)
    assert result.exit_code == 1 and "100 columns" in result.output
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(CRAFTSMEN_ROWS[0])
    for i in range(20_001):
        sheet.append([f"C-{i}", "甲", "焊接:3"])
    long = tmp_path / "long.xlsx"
    workbook.save(long)
    result = import_file(app, long, unit_code)
    assert result.exit_code == 1 and "20000" in result.output
    csv_path = tmp_path / "long.csv"
    csv_path.write_text(
        "external_id,name,skills\n" + "".join(f"C-{i},甲,焊接:3\n" for i in range(20_001)),
        encoding="utf-8",
    )
    result = import_file(app, csv_path, unit_code)
    assert result.exit_code == 1 and "20000" in result.output
    assert people(session) == []


def _two_units_with_craftsmen(app: Flask, session: Session, tmp_path: Path) -> None:
    """HZDJ (the apprentices' unit) and two others, XTDJ and NBDJ, whose craftsmen share an
    external id (C-1) besides their own (C-2 in XTDJ, C-3 in NBDJ); HZDJ has a C-9."""
    alliance = factories.alliance(session, "EMCA")
    factories.skills(session, alliance)
    for code in ("HZDJ", "XTDJ", "NBDJ"):
        factories.unit(session, alliance, code)
    session.commit()
    files = {
        "XTDJ": "external_id,name,skills\nC-1,甲,焊接:5\nC-2,乙,焊接:4\n",
        "NBDJ": "external_id,name,skills\nC-1,丙,焊接:5\nC-3,丁,焊接:3\n",
        "HZDJ": "external_id,name,skills\nC-9,戊,焊接:5\n",
    }
    for code, text in files.items():
        path = tmp_path / f"{code}.csv"
        path.write_text(text, encoding="utf-8")
        result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", code])
        assert result.exit_code == 0, result.output


def _craftsman_id(session: Session, unit_code: str, external_id: str) -> int:
    return session.scalars(
        select(Craftsman.id)
        .join(Unit, Craftsman.unit_id == Unit.id)
        .where(Unit.code == unit_code, Craftsman.external_id == external_id)
    ).one()


def test_apprentices_choices_come_in_as_columns(
    app: Flask, session: Session, tmp_path: Path
) -> None:
    _two_units_with_craftsmen(app, session, tmp_path)
    path = tmp_path / "apprentices.csv"
    path.write_text(
        "external_id,name,wants,preferred_1,preferred_2,preferred_3,avoid\n"
        "A-1,陈晓,焊接:3,C-2,NBDJ:C-1,,C-3；XTDJ:C-1\n"
        "A-2,王芳,焊接:2,,,,\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", "HZDJ"])
    assert result.exit_code == 0, result.output
    first = session.scalars(select(Apprentice).where(Apprentice.external_id == "A-1")).one()
    rows = {
        (p.craftsman_id, p.rank)
        for p in session.scalars(
            select(ApprenticePreference).where(ApprenticePreference.apprentice_id == first.id)
        )
    }
    assert rows == {
        (_craftsman_id(session, "XTDJ", "C-2"), 1),
        (_craftsman_id(session, "NBDJ", "C-1"), 2),
        (_craftsman_id(session, "NBDJ", "C-3"), None),
        (_craftsman_id(session, "XTDJ", "C-1"), None),
    }
    assert session.scalar(select(func.count()).select_from(ApprenticePreference)) == 4


@pytest.mark.parametrize(
    ("cells", "named"),
    [
        ("C-1,,,", "several units"),  # two units use C-1
        ("C-9,,,", "'C-9'"),  # the apprentice's own unit
        ("C-404,,,", "'C-404'"),  # nobody
        ("C-2,,,C-2", "ranked too"),  # ranked and avoided
    ],
)
def test_a_bad_choice_names_the_line_and_imports_nothing(
    app: Flask, session: Session, tmp_path: Path, cells: str, named: str
) -> None:
    _two_units_with_craftsmen(app, session, tmp_path)
    path = tmp_path / "apprentices.csv"
    path.write_text(
        "external_id,name,wants,preferred_1,preferred_2,preferred_3,avoid\n"
        "A-1,陈晓,焊接:3,C-3,,,\n"
        f"A-2,王芳,焊接:2,{cells}\n",
        encoding="utf-8",
    )
    result = app.test_cli_runner().invoke(args=["import", str(path), "--unit", "HZDJ"])
    assert result.exit_code != 0
    assert "line 3" in result.output and named in result.output, result.output
    assert session.scalar(select(func.count()).select_from(Apprentice)) == 0
