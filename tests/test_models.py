"""``matcher.models`` is one package by domain that reads as one module: every public name of
every module is importable from the package, and importing the package registers every table."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import matcher.models
from matcher.db import Base

MODULES = sorted(info.name for info in pkgutil.iter_modules(matcher.models.__path__))
MODEL_WRITING_HELPERS = {"one_of"}  # for declaring tables, not for the code that uses them


def _public_names(module: ModuleType) -> set[str]:
    """What ``module`` itself defines (classes, tables, status names), not what it imports."""
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or name in MODEL_WRITING_HELPERS:
            continue
        defined_here = getattr(value, "__module__", module.__name__) == module.__name__
        if defined_here and not isinstance(value, ModuleType) and name != "annotations":
            names.add(name)
    return names


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_is_reexported(name: str) -> None:
    module = importlib.import_module(f"matcher.models.{name}")
    missing = {
        n for n in _public_names(module) if getattr(matcher.models, n, None) is not vars(module)[n]
    }
    assert missing == set()
    assert _public_names(module) <= set(matcher.models.__all__)


def test_the_package_registers_every_table() -> None:
    # What Alembic's env compares with the migrations: every mapped class of every module.
    tables = {
        mapper.local_table.name
        for name in MODULES
        for value in vars(importlib.import_module(f"matcher.models.{name}")).values()
        if isinstance(value, type) and issubclass(value, Base) and value is not Base
        for mapper in [value.__mapper__]
    }
    assert tables and tables == set(Base.metadata.tables)
    assert MODULES == [
        "access",
        "alliances",
        "base",
        "matching",
        "mentorships",
        "offers",
        "people",
        "privacy",
        "programme",
        "scheduler",
        "webhooks",
    ]
