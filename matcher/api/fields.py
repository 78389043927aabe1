"""Strict marshmallow fields: what HR systems send is taken as typed, never coerced."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import marshmallow as ma

from matcher.text import multi_line_problem, single_line_problem


class Text(ma.fields.String):
    """One line of text (names, ids, codes, regions, emails): what the databases store exactly
    and an email header, a CSV cell or a log line can carry as it is.

    Refused: NUL and lone surrogates (unstorable), control characters and line breaks (C0 with
    TAB, DEL, C1, U+2028, U+2029 — anything that would split the line), and blank values unless
    ``allow_blank``.
    """

    multi_line = False

    def __init__(self, *, allow_blank: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_blank = allow_blank

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("Must not contain NUL characters.")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ma.ValidationError("Must be valid Unicode (no lone surrogates).") from exc
        problem = multi_line_problem(text) if self.multi_line else single_line_problem(text)
        if problem:
            raise ma.ValidationError(problem)
        if not self.allow_blank and not text.strip():
            raise ma.ValidationError("Must not be blank.")
        return text


class MultiLineText(Text):
    """Free text (summary content, comments): line breaks (\\n, \\r\\n) allowed, no other
    control characters."""

    multi_line = True


class Identifier(Text):
    """An id another system chose (a person's external id): one line, and no whitespace at either
    end — ``"DUP-2"`` and ``"DUP-2 "`` would otherwise name two people, so it is refused rather
    than silently trimmed (the same rule in bodies, in URLs and in imports)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text != text.strip():
            raise ma.ValidationError("Must not begin or end with whitespace.")
        return text


class Email(Text, ma.fields.Email):
    """An email address on one line (marshmallow's address check lets U+2028 through)."""


def text(
    min_length: int = 1, max_length: int = 200, *, multi_line: bool = False, **kwargs: Any
) -> Text:
    """A bounded Text (or MultiLineText) field; with ``min_length`` blank values are refused."""
    field = MultiLineText if multi_line else Text
    return field(
        allow_blank=not min_length,
        validate=ma.validate.Length(min=min_length, max=max_length),
        **kwargs,
    )


class StrictInteger(ma.fields.Integer):
    """An integer given as a JSON number: ``"2"``, ``2.5`` and ``true`` are rejected."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.make_error("invalid")
        return int(value)


# Ids are INTEGER columns (32-bit on PostgreSQL): a larger one cannot exist, and binding it
# would be a database error, not a "not found".
MAX_ID = 2**31 - 1


class Id(ma.fields.Integer):
    """A row id, in a body or a query string: 1 to :data:`MAX_ID`, so every database can look
    it up. In bodies it must be a JSON number (``strict``); query strings are text anyway."""

    def __init__(self, *, strict: bool = True, **kwargs: Any) -> None:
        super().__init__(strict=strict, validate=ma.validate.Range(min=1, max=MAX_ID), **kwargs)

    def _validated(self, value: Any) -> int:
        if self.strict and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise self.make_error("invalid")
        return int(super()._validated(value))


class UtcDateTime(ma.fields.AwareDateTime):
    """An ISO 8601 time with an offset, loaded as UTC: the form every timestamp column stores.

    A time that exists with its offset but not in UTC (``0001-01-01T00:00:00+14:00`` falls
    before year 1) cannot be compared with a stored one; it is a field error, not a 500.
    """

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> datetime:
        moment: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError as exc:
            raise ma.ValidationError(
                "Must lie between 0001-01-01 and 9999-12-31 once converted to UTC."
            ) from exc


class StrictFloat(ma.fields.Float):
    """A finite JSON number (integers allowed); strings and booleans rejected."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.make_error("invalid")
        return super()._validated(value)


class StrictBoolean(ma.fields.Boolean):
    """``true`` or ``false``, nothing else."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:  # noqa: ARG002
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def validate_timezone(name: str) -> None:
    """An IANA timezone name such as Asia/Shanghai."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ma.ValidationError("Unknown IANA timezone.") from exc
