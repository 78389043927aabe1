"""Typed settings from ``MATCHER_*`` environment variables, with working development defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

DEV_SECRET_KEY = "dev-insecure-secret-key"


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    env: str = "development"
    database_url: str = ""  # empty: sqlite file in the Flask instance folder
    secret_key: str = DEV_SECRET_KEY
    smtp_url: str = ""  # empty: emails are written to files in the outbox folder
    smtp_timeout_seconds: int = 20  # a stalled SMTP server costs one email this long, then retry
    mail_from: str = "matcher@localhost"
    base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Asia/Shanghai"
    max_body_bytes: int = 5 * 1024 * 1024
    log_level: str = "INFO"
    log_format: str = ""  # "json" or "text"; empty: json in production, text otherwise
    # Runs larger than this many apprentice × slot cells are queued for the scheduler process.
    match_inline_max_cells: int = 4_000_000
    # Requests per API key and minute (reads and writes together); 0 turns the limit off.
    rate_limit_per_minute: int = 1200

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """Read ``MATCHER_<FIELD>`` variables, then apply explicit overrides (tests, CLI)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"MATCHER_{field.name.upper()}")
            if raw is None:
                continue
            if field.type == "int":
                try:
                    values[field.name] = int(raw)
                except ValueError as exc:
                    raise ConfigError(f"MATCHER_{field.name.upper()} must be an integer") from exc
            else:
                values[field.name] = raw
        settings = replace(cls(), **values)
        if overrides:
            settings = replace(settings, **dict(overrides))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Fail fast on settings that cannot work."""
        if self.env not in {"development", "testing", "production"}:
            raise ConfigError("MATCHER_ENV must be development, testing or production")
        if self.env == "production" and (
            self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32
        ):
            raise ConfigError(
                "production needs MATCHER_SECRET_KEY of at least 32 random characters"
            )
        if self.log_format not in ("", "json", "text"):
            raise ConfigError("MATCHER_LOG_FORMAT must be json or text")
        if self.max_body_bytes <= 0:
            raise ConfigError("limits must be positive")
        if self.rate_limit_per_minute < 0:
            raise ConfigError("MATCHER_RATE_LIMIT_PER_MINUTE must be 0 (off) or positive")
