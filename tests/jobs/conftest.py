"""A real SMTP server on loopback (aiosmtpd) that records what it accepted; a real HTTP receiver
for webhooks and chat robots (``tests/receivers.py``)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask

from matcher.extensions import state
from tests.receivers import Receiver, running_receiver


@dataclass
class Sink:
    """What the server received, and how it should misbehave."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> SMTP reply
    stall_first_recipient: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        if self.stall_first_recipient.is_set():
            # Hold this delivery until the test lets go (it kills the sender meanwhile).
            self.stalled.set()
            while self.stall_first_recipient.is_set():
                await asyncio.sleep(0.01)
            return "451 try again"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"


def free_port() -> int:
    """A loopback port nobody listens on (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def smtp_sink() -> Iterator[Sink]:
    """A running SMTP server on a free loopback port."""
    yield from _running(Sink(port=free_port()))


LOGIN = ("matcher", "s3cret/pass:word")


@pytest.fixture
def smtp_sink_with_login() -> Iterator[Sink]:
    """A server that takes mail only after AUTH PLAIN with ``LOGIN``."""

    def authenticate(
        _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == LOGIN
        )
        return AuthResult(success=ok)

    yield from _running(
        Sink(port=free_port()),
        authenticator=authenticate,
        auth_required=True,
        auth_require_tls=False,
    )


def _running(sink: Sink, **options: Any) -> Iterator[Sink]:
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, **options)
    controller.start()
    try:
        yield sink
    finally:
        sink.stall_first_recipient.clear()
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running HTTP receiver on a free loopback port."""
    with running_receiver() as running:
        yield running


@pytest.fixture
def allow_private(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API as MATCHER_WEBHOOK_ALLOW_PRIVATE=true runs it (receivers on loopback)."""
    matcher_state = state(app)
    settings = dataclasses.replace(matcher_state.settings, webhook_allow_private=True)
    monkeypatch.setitem(
        app.extensions, "matcher", dataclasses.replace(matcher_state, settings=settings)
    )
