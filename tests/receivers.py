"""A real HTTP receiver on loopback that records what it was sent and answers as scripted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What arrived, and how to answer: ``answers`` are taken in order, then 200."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    # The body of every answer (chat platforms say whether they took a message in it).
    reply: bytes = b'{"errcode": 0, "errmsg": "ok"}'
    replies: list[bytes] = field(default_factory=list)  # taken in order before ``reply``
    # While ``hold`` is set, a request is recorded in ``held`` and kept unanswered until
    # ``release`` is set (the test kills or times out the sender meanwhile).
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    held: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers.get("Content-Length") or 0)
            got = Received(self.path, dict(self.headers.items()), self.rfile.read(length))
            if receiver.hold.is_set():
                with receiver.lock:
                    receiver.held.append(got)
                receiver.arrived.set()
                receiver.release.wait(timeout=120)
                self.close_connection = True
                return  # the sender is gone (or timed out): nothing to answer
            with receiver.lock:
                receiver.requests.append(got)
                status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                payload = receiver.replies.pop(0) if receiver.replies else receiver.reply
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    """A receiver listening on a free loopback port until the block ends."""
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver), bind_and_activate=False)
    server.request_queue_size = 64  # the job sends several requests at once
    server.server_bind()
    server.server_activate()
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
