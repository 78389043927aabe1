"""What every table shares: the declarative base, timestamps, locales and check helpers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from matcher.db import Base, UTCDateTime, utcnow

__all__ = ["LOCALES", "Base", "TimestampMixin", "one_of"]


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK condition: ``column`` holds one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


LOCALES = ("zh-CN", "en")


class TimestampMixin:
    """``created_at`` / ``updated_at`` kept by the service, never by clients."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
