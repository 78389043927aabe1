"""Text normalisation shared by skill tags and matching."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def skill_key(name: str) -> str:
    """The comparison key of a skill name: NFKC, trimmed, inner spaces collapsed, case-folded."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip().casefold()


def skill_display(name: str) -> str:
    """The stored display form of a skill name: NFKC, trimmed, inner spaces collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip()
