"""Read people from an HR export (CSV or XLSX) into the records the bulk upsert takes.

Columns (header row, any order): ``external_id``, ``name``, ``email``, ``locale``, ``region``,
``active``; craftsmen add ``honours`` (``全国劳动模范；大国工匠``), ``skills``
(``数控车削:5；焊接:4``) and ``capacity``; apprentices add ``wants``
(``数控车削:3；焊接:2:0.5``, that is name:level[:weight]) and, optionally, their choice of
craftsmen of other units (programme.md, "Two-way choice"): ``preferred_1`` .. ``preferred_3``
and ``avoid`` (``C-017；C-102``), as the craftsmen's external ids (``UNIT_CODE:external_id``
where two units use the same one). A file with these columns sets every row's choice (blank:
none); without them, choices stay as they are. Both kinds may add ``cross_unit_consent_at``:
when the person gave cross-unit consent (ISO 8601 with offset, or a date, read as midnight in
the alliance's timezone), to the alliance's current notice version; ``withdrawn`` (``撤回``)
withdraws it, an empty cell leaves it as it is.

CSV in UTF-8 (with or without BOM), GB18030/GBK, or UTF-16 with its BOM; XLSX bounded before it
is read (MAX_* below) and read as it is, whatever its ``<dimension>`` claims. Trailing empty
columns and cells are padding; duplicate, unnamed or unknown columns and cells beyond the named
columns are errors naming the file's line (CSV) or row (sheet), blank ones counted.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from matcher.errors import ValidationFailed

_LIST = re.compile(r"[;；、\n]+")
PAIR = re.compile(r"[:：]")
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
    "cross_unit_consent_at",
}
RANKED_COLUMNS = ("preferred_1", "preferred_2", "preferred_3")
CHOICE_COLUMNS = {*RANKED_COLUMNS, "avoid"}
APPRENTICE_COLUMNS = {
    "external_id",
    "name",
    "email",
    "locale",
    "region",
    "active",
    "wants",
    *CHOICE_COLUMNS,
    "cross_unit_consent_at",
}
_WITHDRAWN = {"withdrawn", "撤回"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


MAX_ROWS = 20_000  # people, not counting the header and blank lines
MAX_COLUMNS = 100
MAX_UNCOMPRESSED_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class Row:
    """One record of the file, with where it starts (CSV line / sheet row, blank ones counted)."""

    line: int
    cells: dict[str, str]


@dataclass(frozen=True)
class Table:
    """The file's header and records."""

    unit: str  # "line" (CSV) or "row" (sheet): how error messages name places in the file
    header_line: int
    columns: list[str]
    rows: list[Row]

    def where(self, index: int) -> str:
        """``line 7`` / ``row 7``: the place of record ``index``."""
        return f"{self.unit} {self.rows[index].line}"


def read_table(path: Path) -> Table:
    """The header and records of the first sheet (XLSX) or of the CSV, all checked: what the
    file holds, never what its header claims. Any problem is a ValidationFailed naming the file's
    lines; nothing else escapes."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        unit, lines = "row", _xlsx_lines(path)
    elif suffix == ".csv":
        unit, lines = "line", _csv_lines(path)
    else:
        raise ValidationFailed(f"Unsupported file type '{path.suffix}': use .csv or .xlsx.")
    return _table(unit, lines)


def _table(unit: str, lines: Iterator[tuple[int, list[str]]]) -> Table:
    problems: list[str] = []
    header_line, columns = 0, []
    for number, cells in lines:
        if any(c.strip() for c in cells):
            header_line, columns = number, _trimmed([c.strip().lower() for c in cells])
            break
    if not columns:
        raise ValidationFailed("The file is empty: no header row.")
    seen: dict[str, int] = {}
    for position, column in enumerate(columns, start=1):
        if not column:
            problems.append(f"{unit} {header_line}: column {position} has no name")
        elif column in seen:
            problems.append(
                f"{unit} {header_line}: column '{column}' appears twice "
                f"(columns {seen[column]} and {position})"
            )
        else:
            seen[column] = position
    if problems:
        raise _file_problems(problems)
    rows: list[Row] = []
    for number, cells in lines:
        values = _trimmed([c.strip() for c in cells])
        if not values:
            continue  # a blank line: skipped, but still counted in the numbering
        if len(values) > len(columns):
            extra = len(values) - len(columns)
            problems.append(
                f"{unit} {number}: {extra} cell(s) beyond the {len(columns)} named columns"
            )
            continue
        rows.append(Row(number, dict(zip(columns, values, strict=False))))
        if len(rows) > MAX_ROWS:
            raise ValidationFailed(f"More than {MAX_ROWS} records: split the file.")
    if problems:
        raise _file_problems(problems)
    return Table(unit=unit, header_line=header_line, columns=columns, rows=rows)


def _trimmed(cells: list[str]) -> list[str]:
    """Without the trailing empty cells spreadsheets pad rows with."""
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return cells[:end]


def _file_problems(problems: list[str]) -> ValidationFailed:
    return ValidationFailed("\n".join(["invalid file; nothing was imported", *problems]))


def _csv_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Each record with its first physical line (quoted cells may span lines)."""
    text = _decode(path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _file_problems([f"line {reader.line_num}: not readable CSV ({exc})"]) from exc
        if len(_trimmed([c.strip() for c in cells])) > MAX_COLUMNS:
            raise _file_problems([f"line {start}: more than {MAX_COLUMNS} columns"])
        yield start, cells
        start = reader.line_num + 1


def _decode(raw: bytes) -> str:
    """UTF-16 (by its BOM), UTF-8 (with or without BOM), else GB18030 (Excel on Chinese
    Windows saves CSV in GBK, which GB18030 contains)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ["utf-16"]
    else:
        encodings = ["utf-8-sig", "gb18030"]
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break  # decodable bytes, but a binary file, not text
        return text
    raise ValidationFailed(
        "The file is not CSV text in UTF-8, GB18030/GBK or UTF-16 (with its BOM); "
        "save it from the spreadsheet as 'CSV UTF-8'."
    )


def _xlsx_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """The first sheet's rows, numbered as the sheet numbers them, bounded before reading."""
    try:
        with zipfile.ZipFile(path) as archive:
            # Declared sizes bound what reading may inflate (zipfile stops at them).
            uncompressed = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValidationFailed("The file is not a valid .xlsx workbook (not a zip).") from exc
    if uncompressed > MAX_UNCOMPRESSED_BYTES:
        raise ValidationFailed(
            f"The workbook unpacks to {uncompressed // 2**20} MiB, more than "
            f"{MAX_UNCOMPRESSED_BYTES // 2**20} MiB: split it."
        )
    from openpyxl import load_workbook

    rows: list[tuple[int, list[str]]] = []
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = workbook.worksheets[0]
            sheet.reset_dimensions()  # the file's <dimension> may lie either way: ignore it
            # One column beyond the limit, to tell a sheet that uses more columns.
            # Closed explicitly: a refusal mid-sheet would otherwise leave the generator's open
            # sheet stream to the garbage collector.
            with closing(sheet.iter_rows(max_col=MAX_COLUMNS + 1, values_only=True)) as cells:
                for number, values in enumerate(cells, start=1):
                    text = ["" if v is None else str(v) for v in values]
                    if not any(t.strip() for t in text):
                        continue  # a blank row: nothing to count or keep
                    if len(_trimmed(text)) > MAX_COLUMNS:
                        raise _file_problems([f"row {number}: more than {MAX_COLUMNS} columns"])
                    rows.append((number, text))
                    if len(rows) > MAX_ROWS + 1:
                        raise ValidationFailed(f"More than {MAX_ROWS} records: split the file.")
        finally:
            workbook.close()
    except ValidationFailed:
        raise
    except Exception as exc:  # a third-party parser on untrusted bytes: any failure is the file's
        raise ValidationFailed(
            f"The file is not a readable .xlsx workbook ({type(exc).__name__}: {exc})."
        ) from exc
    return iter(rows)


def detect_kind(table: Table) -> str:
    """``craftsmen`` or ``apprentices``, from the columns present; unknown columns refused."""
    columns = set(table.columns)
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
        raise _file_problems(
            [f"{table.unit} {table.header_line}: unknown columns {sorted(unknown)}"]
        )
    return kind


def to_record(
    row: dict[str, str], kind: str, *, consent_version: str = "1", timezone: str = "Asia/Shanghai"
) -> dict[str, Any]:
    """One row as the JSON record the API's bulk upsert would receive (validation happens there);
    a consent time answers ``consent_version``, a bare date is midnight in ``timezone``."""
    record: dict[str, Any] = {}
    for column, value in row.items():
        if value == "" or column in CHOICE_COLUMNS:  # the choice is set after the upsert
            continue
        if column == "cross_unit_consent_at":
            record["cross_unit_consent"] = _consent(value, consent_version, timezone)
        elif column == "honours":
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


def to_choice(row: dict[str, str]) -> tuple[list[str], list[str]] | None:
    """An apprentice row's ranked craftsmen (best first) and avoided ones, as the file names
    them; None when the file has no choice columns (the choice is then left as it is)."""
    if not CHOICE_COLUMNS & row.keys():
        return None
    ranked = [row[c].strip() for c in RANKED_COLUMNS if row.get(c, "").strip()]
    avoid = [a.strip() for a in _LIST.split(row.get("avoid", "")) if a.strip()]
    return ranked, avoid


def _consent(value: str, version: str, timezone: str) -> dict[str, Any] | None:
    """A ``cross_unit_consent_at`` cell as the API's ``cross_unit_consent``."""
    if value.strip().lower() in _WITHDRAWN:
        return None
    given_at = value.strip()
    if _DATE.match(given_at):
        try:
            day = date.fromisoformat(given_at)
        except ValueError:
            pass  # left for the schema to reject with a clear message
        else:
            given_at = datetime.combine(day, time(), ZoneInfo(timezone)).isoformat()
    return {"given_at": given_at, "version": version}


def _number(value: str) -> Any:
    try:
        number = float(value)
    except ValueError:
        return value  # left for the schema to reject with a clear message
    return int(number) if number.is_integer() else number


def _skill(part: str, column: str) -> dict[str, Any]:
    pieces = [p.strip() for p in PAIR.split(part.strip())]
    skill: dict[str, Any] = {"name": pieces[0]}
    if len(pieces) > 1:
        skill["level"] = _number(pieces[1])
    if column == "wants" and len(pieces) > 2:
        skill["weight"] = _number(pieces[2])
    return skill
