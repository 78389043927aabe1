"""Pages of a list: their sizes and arithmetic, the same for the API's lists and the pages."""

from __future__ import annotations

import math

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
MAX_PAGE = 1_000_000  # far beyond any real list; keeps OFFSET inside 64 bits on PostgreSQL


def page_count(total: int, page_size: int) -> int:
    """How many pages ``total`` rows fill; an empty list still has its (empty) first page."""
    return max(1, math.ceil(total / page_size))


def page_offset(page: int, page_size: int) -> int:
    """The rows before page ``page`` (1-based)."""
    return (page - 1) * page_size
