"""One POST to a webhook receiver, behind the address guard (webhooks.md, "Delivery").

The guard is applied twice: :func:`url_problem` when a URL is registered (its form, https in
production, no literal private address), and :func:`resolve_target` on *every* delivery, after
DNS resolution. The request then goes to the very address that was checked (the connection is
pinned to it, with the URL's host name in ``Host`` and in TLS's SNI and certificate check), so a
name that resolves to a public address for the check and to ``127.0.0.1`` a moment later (DNS
rebinding) cannot reach the inside. Redirects are never followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
ANSWER_EXCERPT_BYTES = 1000  # of the receiver's body, kept as the delivery's last error


class RefusedTarget(Exception):
    """The URL, or an address its host resolves to, may not be called."""


def is_public_address(address: str) -> bool:
    """Whether ``address`` is a globally routable unicast address (not private, loopback,
    link-local such as the cloud metadata service 169.254.169.254, shared, reserved or
    multicast; an IPv4-mapped IPv6 address is judged by its IPv4 address)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def url_problem(url: str, *, allow_private: bool, https_only: bool) -> str | None:
    """Why ``url`` cannot be a webhook target, judged without DNS; None if it may be."""
    if len(url) > MAX_URL_LENGTH:
        return f"At most {MAX_URL_LENGTH} characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "An absolute http:// or https:// URL."
    if https_only and parts.scheme != "https":
        return "Only https:// URLs are allowed in production."
    if parts.username is not None or parts.password is not None:
        return "No user name or password in the URL; the signature authenticates the sender."
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "No spaces or control characters."
    if port == 0:
        return "Not a valid port."
    if allow_private:
        return None
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        return "Loopback addresses are not allowed."
    try:
        literal = is_public_address(host)
    except ValueError:
        return None  # a name: judged after resolution, at every delivery
    return None if literal else "Private, loopback and link-local addresses are not allowed."


def resolve_target(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to: ``host`` resolved now; refused if *any* of its addresses is
    not public (a name that mixes public and private answers is refused as a whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedTarget(f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise RefusedTarget(f"{host} has no address")
    if not allow_private:
        private = [a for a in addresses if not is_public_address(a)]
        if private:
            raise RefusedTarget(
                f"{host} resolves to a private, loopback or link-local address ({private[0]})"
            )
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address; ``Host`` still names the URL's host."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a checked address: SNI and the certificate are checked against the URL's host."""

    def __init__(
        self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True)
class Answer:
    """What the receiver answered."""

    status: int
    retry_after: str | None
    excerpt: str


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_private: bool,
    https_only: bool,
) -> Answer:
    """POST ``body`` to ``url``; the whole exchange (resolution aside) ends within ``timeout``
    seconds. Raises :class:`RefusedTarget` for a target the guard refuses, ``OSError`` (and
    ``http.client.HTTPException``) when the receiver cannot be reached or answers nonsense."""
    problem = url_problem(url, allow_private=allow_private, https_only=https_only)
    if problem:
        raise RefusedTarget(problem)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve_target(host, port, allow_private=allow_private)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = _PinnedHTTPSConnection(
            host, port, address=address, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = _PinnedHTTPConnection(host, port, address=address, timeout=timeout)
    # The socket timeout bounds each read; this bounds the whole exchange (a receiver that
    # trickles its answer a byte at a time would otherwise hold the sender for ever).
    expired = threading.Event()

    def cut() -> None:
        expired.set()
        if connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    watchdog = threading.Timer(timeout, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(ANSWER_EXCERPT_BYTES)
        return Answer(
            status=response.status,
            retry_after=response.getheader("Retry-After"),
            excerpt=excerpt.decode("utf-8", "replace"),
        )
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {timeout:g} s") from exc
        raise
    finally:
        watchdog.cancel()
        connection.close()


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max(0.0, (when - reference).total_seconds())
