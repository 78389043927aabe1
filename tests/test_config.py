"""Settings come from MATCHER_* variables and fail fast when they cannot work."""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

import pytest

from matcher.app import create_app
from matcher.config import SECRET_KEY_FILE, ConfigError, Settings, variable
from matcher.extensions import state


def test_defaults_work_for_development() -> None:
    settings = Settings.from_env({})
    assert settings.env == "development" and settings.timezone == "Asia/Shanghai"
    assert settings.max_body_bytes == 5 * 1024 * 1024


def test_variables_are_read_and_typed() -> None:
    settings = Settings.from_env(
        {"MATCHER_DATABASE_URL": "postgresql://x/y", "MATCHER_MAX_BODY_BYTES": "100"}
    )
    assert settings.database_url == "postgresql://x/y" and settings.max_body_bytes == 100
    with pytest.raises(ConfigError, match="integer"):
        Settings.from_env({"MATCHER_MAX_BODY_BYTES": "many"})


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Settings.from_env({"MATCHER_ENV": "production"})
    settings = Settings.from_env({"MATCHER_ENV": "production", "MATCHER_SECRET_KEY": "k" * 40})
    assert settings.env == "production"


def test_production_will_not_start_without_a_secret_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MATCHER_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="MATCHER_SECRET_KEY"):
        create_app({"env": "production", "database_url": "sqlite://"}, str(tmp_path))
    assert not (tmp_path / SECRET_KEY_FILE).exists()  # production never makes one up
    with pytest.raises(ConfigError, match="MATCHER_SECRET_KEY"):
        create_app({"env": "production", "database_url": "sqlite://", "secret_key": "short"})


def test_development_makes_a_key_once_and_keeps_it_in_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MATCHER_SECRET_KEY", raising=False)
    first = create_app({"env": "development", "database_url": "sqlite://"}, str(tmp_path))
    key_file = tmp_path / SECRET_KEY_FILE
    key = key_file.read_text().strip()
    assert len(key) >= 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.secret_key == key == state(first).settings.secret_key  # summary links use it too
    # A restart (or the scheduler process beside the web workers) signs with the same key.
    second = create_app({"env": "development", "database_url": "sqlite://"}, str(tmp_path))
    assert second.secret_key == key and list(tmp_path.iterdir()) == [key_file]
    # Another instance folder gets a key of its own: none is built into the source.
    other = create_app({"env": "development", "database_url": "sqlite://"}, str(tmp_path / "b"))
    assert other.secret_key != key
    # A key that is set wins, and nothing is written for it.
    given = create_app(
        {"env": "development", "database_url": "sqlite://", "secret_key": "g" * 40},
        str(tmp_path / "c"),
    )
    assert given.secret_key == "g" * 40 and not (tmp_path / "c" / SECRET_KEY_FILE).exists()


def test_the_image_runs_in_production_and_compose_takes_the_key_from_the_environment() -> None:
    root = Path(__file__).resolve().parent.parent
    dockerfile = (root / "Dockerfile").read_text()
    runtime = dockerfile[dockerfile.rindex("FROM ") :]  # the image that ships
    assert re.search(r"^ENV MATCHER_ENV=production\b", runtime, re.MULTILINE)
    assert not re.search(r"SECRET_KEY\s*[=:]", dockerfile)  # no key baked into the image
    compose = (root / "docker-compose.yml").read_text()
    (line,) = [row for row in compose.splitlines() if "MATCHER_SECRET_KEY:" in row]
    assert line.split(":", 1)[1].strip().startswith("${MATCHER_SECRET_KEY:?")


def test_proxy_hops_is_a_small_count() -> None:
    assert Settings.from_env({}).proxy_hops == 0
    assert Settings.from_env({"MATCHER_PROXY_HOPS": "2"}).proxy_hops == 2
    for bad in ("-1", "99", "one"):
        with pytest.raises(ConfigError, match="PROXY_HOPS"):
            Settings.from_env({"MATCHER_PROXY_HOPS": bad})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MATCHER_RATE_LIMIT_PER_MINUTE", "abc"),
        ("MATCHER_RATE_LIMIT_PER_MINUTE", "12.5"),
        ("MATCHER_PROXY_HOPS", "-1"),
        ("MATCHER_PROXY_HOPS", "11"),
        ("MATCHER_ENV", "prod"),
        ("MATCHER_ENV", "Production"),
        ("MATCHER_LOG_FORMAT", "xml"),
        ("MATCHER_LOG_LEVEL", "LOUD"),
        ("MATCHER_MAX_BODY_BYTES", "0"),
        ("MATCHER_SMTP_TIMEOUT_SECONDS", "0"),
        ("MATCHER_SMTP_TIMEOUT_SECONDS", "ten"),
        ("MATCHER_MATCH_INLINE_MAX_CELLS", "-5"),
        ("MATCHER_TIMEZONE", "Mars/Olympus_Mons"),
    ],
)
def test_a_wrong_value_stops_the_start_naming_its_variable(variable: str, value: str) -> None:
    # The message names the variable and quotes what was given (typed, once it parsed).
    with pytest.raises(ConfigError, match=f"^{variable} must be .*, not '?{re.escape(value)}'?$"):
        Settings.from_env({variable: value})


def _hints() -> dict[str, Any]:
    return get_type_hints(Settings, include_extras=True)


def _base(hint: Any) -> Any:
    return get_args(hint)[0] if get_origin(hint) is Annotated else hint


@pytest.mark.parametrize(
    "field", [f.name for f in fields(Settings) if _base(_hints()[f.name]) is int]
)
def test_every_integer_setting_refuses_text(field: str) -> None:
    name = variable(field)
    with pytest.raises(ConfigError, match=f"^{name} must be an integer"):
        Settings.from_env({name: "many"})


@pytest.mark.parametrize(
    "field", [f.name for f in fields(Settings) if get_origin(_hints()[f.name]) is Literal]
)
def test_every_choice_setting_takes_its_choices_only(field: str) -> None:
    name = variable(field)
    for choice in get_args(_hints()[field]):
        assert getattr(Settings.from_env({name: choice, **PRODUCTION_KEY}), field) == choice
    with pytest.raises(ConfigError, match=f"^{name} must be one of"):
        Settings.from_env({name: "something-else"})


PRODUCTION_KEY = {"MATCHER_SECRET_KEY": "k" * 40}  # so that MATCHER_ENV=production can start


@pytest.mark.parametrize(
    ("override", "value"),
    [
        ("proxy_hops", "2"),  # a string where a number belongs
        ("rate_limit_per_minute", True),  # a bool is an int to Python, not to an operator
        ("max_body_bytes", 1.5),
        ("env", "prod"),
        ("mail_from", 42),
    ],
)
def test_overrides_are_held_to_the_same_types(override: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"^{variable(override)} must be"):
        Settings.from_env({}, overrides={override: value})


@dataclass(frozen=True)
class _MoreSettings(Settings):
    """The parser's other kinds, which no setting uses yet."""

    verbose: bool = False
    ratio: float = 0.5


def test_booleans_and_numbers_are_parsed_strictly() -> None:
    assert _MoreSettings.from_env({}) == _MoreSettings()
    for word, meaning in [("1", True), ("yes", True), ("On", True), ("false", False), ("0", False)]:
        assert _MoreSettings.from_env({"MATCHER_VERBOSE": word}).verbose is meaning
    assert _MoreSettings.from_env({"MATCHER_RATIO": "0.25"}).ratio == 0.25
    for bad in ("maybe", "", "2"):
        with pytest.raises(ConfigError, match="^MATCHER_VERBOSE must be true or false"):
            _MoreSettings.from_env({"MATCHER_VERBOSE": bad})
    for bad in ("half", "nan", "inf"):
        with pytest.raises(ConfigError, match="^MATCHER_RATIO must be"):
            _MoreSettings.from_env({"MATCHER_RATIO": bad})


def test_every_setting_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    missing = [variable(f.name) for f in fields(Settings) if variable(f.name) not in section]
    assert missing == []
