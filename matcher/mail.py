"""Sending email: real SMTP from ``MATCHER_SMTP_URL``, or ``.eml`` files in a folder without it.

``smtp://user:pass@host:587`` (STARTTLS when the server offers it), ``smtp+starttls://...``
(STARTTLS required), ``smtps://...`` (TLS from the start). A failure is *temporary* (connection
refused or dropped, timeout, 4xx: try again later) or *permanent* (5xx: it will never go).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)
SMTP_TIMEOUT_SECONDS = 20.0


class TemporaryFailure(Exception):
    """Try again later: the server was unreachable or said 4xx."""


class PermanentFailure(Exception):
    """Never going to work for this message: the server said 5xx."""


class Mailer(Protocol):
    """Sends one message or raises one of the two failures."""

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to reach the SMTP server."""

    host: str
    port: int
    security: str  # "implicit" (smtps), "required" (smtp+starttls) or "opportunistic" (smtp)
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        """Parse ``smtp[s|+starttls]://[user:pass@]host[:port]``."""
        parts = urlsplit(url)
        schemes = {"smtp": "opportunistic", "smtp+starttls": "required", "smtps": "implicit"}
        if parts.scheme not in schemes or not parts.hostname:
            raise ValueError("MATCHER_SMTP_URL must look like smtp://user:pass@host:port")
        default_port = 465 if parts.scheme == "smtps" else 587 if parts.username else 25
        return cls(
            host=parts.hostname,
            port=parts.port or default_port,
            security=schemes[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class SmtpMailer:
    """One SMTP connection, opened on first use and reused for a batch."""

    def __init__(self, target: SmtpTarget, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        self.target = target
        self.timeout = timeout
        self._client: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        target = self.target
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if target.security == "implicit":
            client = smtplib.SMTP_SSL(
                target.host, target.port, timeout=self.timeout, context=context
            )
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=self.timeout)
            client.ehlo()
            if target.security == "required" or client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
        if target.username:
            client.login(target.username, target.password or "")
        return client

    def send(self, message: EmailMessage) -> None:
        """Send, classifying every failure as temporary or permanent."""
        if self._client is None:
            try:
                self._client = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                # Refused, TLS or login trouble: the server or our settings, not this message;
                # it stays queued until that is fixed.
                self.close()
                raise TemporaryFailure(f"connecting: {type(exc).__name__}: {exc}") from exc
        try:
            refused = self._client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            raise _by_code(min(codes), str(exc.recipients)) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            error = exc.smtp_error
            text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            raise _by_code(exc.smtp_code, text) from exc
        except (OSError, smtplib.SMTPException) as exc:  # refused, reset, timeout, TLS
            self.close()
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc
        if refused:  # some of several recipients refused: our rows have one each
            raise _by_code(min(code for code, _ in refused.values()), str(refused))

    def close(self) -> None:
        """Quit politely; a dead connection is just dropped."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


AUTH_CODES = {530, 534, 535, 538}  # authentication needed / refused: our settings, not the email


def _by_code(code: int, text: str) -> Exception:
    if 500 <= code < 600 and code not in AUTH_CODES:
        return PermanentFailure(f"{code} {text}")
    return TemporaryFailure(f"{code} {text}")


class FolderMailer:
    """Without an SMTP server: each email becomes an ``.eml`` file (and a log line)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        """Write the message where a developer can open it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"]).strip("<>").replace("@", "_at_").replace("/", "_")
        path = self.folder / f"{name}.eml"
        path.write_bytes(bytes(message))
        # The outbox job logs the email's one INFO line (naming the folder); this adds the file.
        log.debug("email to %s written to %s (no MATCHER_SMTP_URL)", message["To"], path)

    def close(self) -> None:
        """Nothing to close."""


@contextmanager
def mailer_for(
    smtp_url: str, outbox_folder: Path, timeout: float = SMTP_TIMEOUT_SECONDS
) -> Iterator[SmtpMailer | FolderMailer]:
    """The mailer the settings ask for, closed afterwards."""
    mailer: SmtpMailer | FolderMailer = (
        SmtpMailer(SmtpTarget.from_url(smtp_url), timeout)
        if smtp_url
        else FolderMailer(outbox_folder)
    )
    try:
        yield mailer
    finally:
        mailer.close()
