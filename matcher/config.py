"""Typed settings from ``MATCHER_*`` environment variables, with working development defaults."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name in the instance folder, not a key
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    env: str = "development"
    database_url: str = ""  # empty: sqlite file in the Flask instance folder
    # Empty outside production: a random key kept in the instance folder (instance_secret_key).
    secret_key: str = ""
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
    # Reverse proxies in front of the service that append to X-Forwarded-For; 0: the client
    # address is the socket's peer and the header, which anyone can write, is ignored.
    proxy_hops: int = 0

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
        if self.env == "production" and len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                "production needs MATCHER_SECRET_KEY of at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters"
            )
        if self.log_format not in ("", "json", "text"):
            raise ConfigError("MATCHER_LOG_FORMAT must be json or text")
        if self.max_body_bytes <= 0:
            raise ConfigError("limits must be positive")
        if self.rate_limit_per_minute < 0:
            raise ConfigError("MATCHER_RATE_LIMIT_PER_MINUTE must be 0 (off) or positive")
        if not 0 <= self.proxy_hops <= 10:
            raise ConfigError("MATCHER_PROXY_HOPS must be 0 (no proxy) to 10")

    def with_instance_secret_key(self, instance_path: Path) -> Settings:
        """These settings with a secret key: the configured one, else (never in production, which
        ``validate`` refused) the instance folder's own, created on first start."""
        if self.secret_key:
            return self
        if self.env == "production":
            raise ConfigError("production needs MATCHER_SECRET_KEY")
        return replace(self, secret_key=instance_secret_key(instance_path))


def instance_secret_key(instance_path: Path) -> str:
    """The key in ``instance_path/secret_key``, created (mode 0600) if there is none yet.

    The web workers and the scheduler process start together (``make run``) and must sign with
    the same key: the first to start writes a whole file under a temporary name and links it
    into place, which fails if another process got there first; that one's key is then read.
    """
    path = instance_path / SECRET_KEY_FILE
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        temporary = instance_path / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use its key
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"{path} holds no usable key; delete it to have a new one made")
    return key
