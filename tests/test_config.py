"""Settings come from MATCHER_* variables and fail fast when they cannot work."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from matcher.app import create_app
from matcher.config import SECRET_KEY_FILE, ConfigError, Settings
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
