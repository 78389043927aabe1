"""The pure layers import alone: the algorithms without Flask or SQLAlchemy, the services without
Flask, so jobs, scripts and other front ends can use them without the web stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "matcher"


def _modules(package: str) -> list[str]:
    """Every module of ``matcher.<package>``, the package itself included, found on disk (not
    by importing, which is what is under test)."""
    names = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _loaded_after_import(module: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after ``import module``."""
    script = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return {name.partition(".")[0] for name in json.loads(result.stdout)}


def _web_stack(loaded: set[str]) -> set[str]:
    return {name for name in loaded if name == "flask" or name.startswith("flask_")}


@pytest.mark.parametrize("module", _modules("algorithms"))
def test_algorithms_load_neither_flask_nor_sqlalchemy(module: str) -> None:
    loaded = _loaded_after_import(module)
    assert _web_stack(loaded) == set()
    assert "sqlalchemy" not in loaded


@pytest.mark.parametrize("module", _modules("services"))
def test_services_load_no_flask(module: str) -> None:
    assert _web_stack(_loaded_after_import(module)) == set()


def test_every_layer_module_is_checked() -> None:
    # The lists above come from the file tree: a new module is held to the rule without a
    # line here; guard against a glob that quietly matches nothing.
    assert "matcher.algorithms" in _modules("algorithms")
    assert "matcher.algorithms.solver" in _modules("algorithms")
    assert "matcher.services.matching" in _modules("services")
