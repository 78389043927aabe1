"""Text rules shared by the API, the web forms, the importer and the emails: skill-name
normalisation, and which characters single-line and multi-line text may hold."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
# Every character that ends a line somewhere (str.splitlines, email headers, CSV readers) or
# controls a terminal: C0, DEL and C1 (category Cc, TAB included), and U+2028 / U+2029.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NOT_ONE_LINE_RUN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Multi-line text keeps its line breaks (\n, \r\n) and nothing else of the above.
_NOT_MULTI_LINE = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]|\r(?!\n)")


def skill_key(name: str) -> str:
    """The comparison key of a skill name: NFKC, trimmed, inner spaces collapsed, case-folded."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip().casefold()


def skill_display(name: str) -> str:
    """The stored display form of a skill name: NFKC, trimmed, inner spaces collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip()


def _problem(found: re.Match[str] | None, what: str) -> str | None:
    if found is None:
        return None
    return f"{what} (found U+{ord(found.group()[0]):04X} at position {found.start() + 1})."


def single_line_problem(value: str) -> str | None:
    """Why ``value`` is not one line of text (a control character or line break), or None."""
    return _problem(
        _NOT_ONE_LINE.search(value),
        "Must be a single line: no line breaks, tabs or other control characters",
    )


def multi_line_problem(value: str) -> str | None:
    """Why ``value`` is not multi-line text (line breaks \\n or \\r\\n only), or None."""
    return _problem(
        _NOT_MULTI_LINE.search(value),
        "Must hold no control characters other than line breaks",
    )


def header_safe(value: str) -> str:
    """``value`` as one line for an email header: every line break or control character becomes
    a space (runs collapse), so data stored before validation existed still builds a message."""
    return _NOT_ONE_LINE_RUN.sub(" ", value).strip()
