"""Read people from an HR export (CSV or XLSX) into the records the bulk upsert takes.

Columns (header row, any order): ``external_id``, ``name``, ``email``, ``locale``, ``region``,
``active``; craftsmen add ``honours`` (``全国劳动模范；大国工匠``), ``skills``
(``数控车削:5；焊接:4``) and ``capacity``; apprentices add ``wants``
(``数控车削:3；焊接:2:0.5``, that is name:level[:weight]).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from matcher.errors import ValidationFailed

_LIST = re.compile(r"[;；、\n]+")
_PAIR = re.compile(r"[:：]")
_TRUE = {"true", "1", "yes", "y", "是", "在职"}
_FALSE = {"false", "0", "no", "n", "否", "离职"}
CRAFTSMAN_COLUMNS = {
    "external_id",
    "name",
    "email",
    "locale",
    "region",
    "active",
    "honours",
    "skills",
    "capacity",
}
APPRENTICE_COLUMNS = {"external_id", "name", "email", "locale", "region", "active", "wants"}


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of the first sheet (XLSX) or of the CSV (UTF-8, UTF-8 with BOM, or GB18030)."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            values = [
                ["" if c is None else str(c) for c in row]
                for row in sheet.iter_rows(values_only=True)
            ]
        finally:
            workbook.close()
    elif path.suffix.lower() == ".csv":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gb18030")  # Excel on Chinese Windows saves CSV in GBK
        values = list(csv.reader(io.StringIO(text)))
    else:
        raise ValidationFailed(f"Unsupported file type '{path.suffix}': use .csv or .xlsx.")
    if not values:
        raise ValidationFailed("The file is empty.")
    header = [h.strip().lower() for h in values[0]]
    return [
        dict(zip(header, (c.strip() for c in row), strict=False))
        for row in values[1:]
        if any(c.strip() for c in row)
    ]


def detect_kind(rows: list[dict[str, str]]) -> str:
    """``craftsmen`` or ``apprentices``, from the columns present."""
    columns = set(rows[0]) if rows else set()
    if "wants" in columns:
        unknown = columns - APPRENTICE_COLUMNS
        kind = "apprentices"
    elif columns & {"skills", "capacity", "honours"}:
        unknown = columns - CRAFTSMAN_COLUMNS
        kind = "craftsmen"
    else:
        raise ValidationFailed(
            "Cannot tell craftsmen from apprentices: add a 'skills' or a 'wants' column."
        )
    if unknown:
        raise ValidationFailed(f"Unknown columns: {sorted(unknown)}.")
    return kind


def to_record(row: dict[str, str], kind: str) -> dict[str, Any]:
    """One row as the JSON record the API's bulk upsert would receive (validation happens there)."""
    record: dict[str, Any] = {}
    for column, value in row.items():
        if value == "":
            continue
        if column == "honours":
            record[column] = [h.strip() for h in _LIST.split(value) if h.strip()]
        elif column in ("skills", "wants"):
            record[column] = [_skill(part, column) for part in _LIST.split(value) if part.strip()]
        elif column == "capacity":
            record[column] = _number(value)
        elif column == "active":
            record[column] = (
                True if value.lower() in _TRUE else False if value.lower() in _FALSE else value
            )
        else:
            record[column] = value
    if kind == "craftsmen":
        record.setdefault("skills", [])
    return record


def _number(value: str) -> Any:
    try:
        number = float(value)
    except ValueError:
        return value  # left for the schema to reject with a clear message
    return int(number) if number.is_integer() else number


def _skill(part: str, column: str) -> dict[str, Any]:
    pieces = [p.strip() for p in _PAIR.split(part.strip())]
    skill: dict[str, Any] = {"name": pieces[0]}
    if len(pieces) > 1:
        skill["level"] = _number(pieces[1])
    if column == "wants" and len(pieces) > 2:
        skill["weight"] = _number(pieces[2])
    return skill
