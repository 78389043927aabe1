"""Settings come from MATCHER_* variables and fail fast when they cannot work."""

from __future__ import annotations

import pytest

from matcher.config import ConfigError, Settings


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
