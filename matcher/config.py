"""Typed settings from ``MATCHER_*`` environment variables, with working development defaults."""

from __future__ import annotations

import logging
import math
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name in the instance folder, not a key
MIN_SECRET_KEY_LENGTH = 32
PREFIX = "MATCHER_"

Environment = Literal["development", "testing", "production"]
LogFormat = Literal["", "json", "text"]
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service."""


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric setting (``Annotated[int, Range(...)]``), checked with its name."""

    low: float | None = None
    high: float | None = None
    meaning: str = ""  # what the edge value means, for the message ("0 turns the limit off")


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment.

    Each field is ``MATCHER_<FIELD>``; its annotation is the whole rule for the value (type,
    ``Literal`` choices, ``Range`` bounds), read by ``from_env`` and checked by ``validate``.
    """

    env: Environment = "development"
    database_url: str = ""  # empty: sqlite file in the Flask instance folder
    # Empty outside production: a random key kept in the instance folder (instance_secret_key).
    secret_key: str = ""
    smtp_url: str = ""  # empty: emails are written to files in the outbox folder
    # A stalled SMTP server costs one email this long, then retry.
    smtp_timeout_seconds: Annotated[int, Range(low=1)] = 20
    mail_from: str = "matcher@localhost"
    base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Asia/Shanghai"
    max_body_bytes: Annotated[int, Range(low=1)] = 5 * 1024 * 1024
    log_level: str = "INFO"  # a name the logging module knows
    log_format: LogFormat = ""  # empty: json in production, text otherwise
    # Runs larger than this many apprentice × slot cells are queued for the scheduler process.
    match_inline_max_cells: Annotated[int, Range(low=0)] = 4_000_000
    # Requests per API key and minute (reads and writes together); 0 turns the limit off.
    rate_limit_per_minute: Annotated[int, Range(low=0, meaning="0 turns the limit off")] = 1200
    # Requests per client address and minute to the public certificate pages (no key to count
    # against); 0 turns the limit off.
    public_rate_limit_per_minute: Annotated[int, Range(low=0, meaning="0 turns the limit off")] = 60
    # Reverse proxies in front of the service that append to X-Forwarded-For; 0: the client
    # address is the socket's peer and the header, which anyone can write, is ignored.
    proxy_hops: Annotated[int, Range(low=0, high=10, meaning="0: no proxy")] = 0
    # Webhook and chat-group targets on private, loopback or link-local addresses (and http://
    # in production): refused unless this is true (tests, on-premise receivers).
    webhook_allow_private: bool = False
    # A receiver that has not answered completely within this many seconds failed the attempt.
    webhook_timeout_seconds: Annotated[int, Range(low=1, high=120)] = 15

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Settings:
        """Read ``MATCHER_<FIELD>`` variables, then apply explicit overrides (tests, CLI)."""
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls, include_extras=True)
        values: dict[str, Any] = {}
        for field in fields(cls):
            name = variable(field.name)
            raw = environ.get(name)
            if raw is not None:
                values[field.name] = _parse(name, raw, hints[field.name])
        settings = replace(cls(), **values)
        if overrides:
            settings = replace(settings, **dict(overrides))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Fail fast on settings that cannot work, naming the variable at fault."""
        hints = get_type_hints(type(self), include_extras=True)
        for field in fields(self):
            _check(variable(field.name), getattr(self, field.name), hints[field.name])
        if self.env == "production" and len(self.secret_key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                "production needs MATCHER_SECRET_KEY of at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters"
            )
        if self.log_level not in logging.getLevelNamesMapping():
            known = ", ".join(logging.getLevelNamesMapping())
            raise ConfigError(f"MATCHER_LOG_LEVEL must be one of {known}, not {self.log_level!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"MATCHER_TIMEZONE must be an IANA time zone such as Asia/Shanghai, "
                f"not {self.timezone!r}"
            ) from exc

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


def variable(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return PREFIX + field_name.upper()


def _parse(name: str, raw: str, hint: Any) -> Any:
    """The typed value of variable ``name`` written as ``raw``; bounds are ``_check``'s."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if hint is bool:
        word = raw.strip().lower()
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise ConfigError(f"{name} must be true or false, not {raw!r}")
    if hint is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if hint is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    return raw  # str, and Literal choices (checked against the choices by _check)


def _check(name: str, value: Any, hint: Any) -> None:
    """Raise ``ConfigError`` unless ``value`` is of ``hint``'s type, choices and range."""
    bounds = Range()
    if get_origin(hint) is Annotated:
        hint, *metadata = get_args(hint)
        bounds = next((m for m in metadata if isinstance(m, Range)), bounds)
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        if value not in choices:
            listed = ", ".join(repr(choice) for choice in choices)
            raise ConfigError(f"{name} must be one of {listed}, not {value!r}")
        return
    if hint not in _KINDS:  # a new field of another type needs a parser here first
        raise TypeError(f"{name}: settings are str, int, float, bool or Literal, not {hint}")
    # bool is an int to Python, never to an operator; an int is a fine float.
    expected: tuple[type, ...] = (int, float) if hint is float else (hint,)
    of_type = isinstance(value, expected) and (hint is bool or not isinstance(value, bool))
    if not of_type:
        raise ConfigError(f"{name} must be {_KINDS.get(hint, hint)}, not {value!r}")
    if hint is float and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {value!r}")
    if (bounds.low is not None and value < bounds.low) or (
        bounds.high is not None and value > bounds.high
    ):
        low = "" if bounds.low is None else f"at least {bounds.low:g}"
        high = "" if bounds.high is None else f"at most {bounds.high:g}"
        meaning = f" ({bounds.meaning})" if bounds.meaning else ""
        raise ConfigError(
            f"{name} must be {' and '.join(filter(None, (low, high)))}{meaning}, not {value!r}"
        )


_KINDS: dict[Any, str] = {
    str: "text",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}
