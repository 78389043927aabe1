"""What every response and every request body gets, whatever view serves it (security.md).

- Headers: ``nosniff`` on every response; on HTML pages a Content-Security-Policy without inline
  script, no framing, and a referrer kept on this site.
- Bodies: a chunked body (no ``Content-Length``) is held to the same limit as a sized one.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

from flask import Response
from werkzeug.wsgi import get_content_length

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# The pages use no JavaScript and no inline style; charts are inline SVG drawn with presentation
# attributes (fill=, stroke=), which CSP does not govern. Forms post to this site only. data:
# images (they run no script) are the pages' empty icon, which spares a /favicon.ico request,
# and Swagger UI's icons on /docs, whose script is a file of this site too (/docs/start.js).
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; object-src 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def security_headers(response: Response) -> Response:
    """``after_request``: the headers of security.md (a view that set its own keeps it)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors, for old browsers
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


class ChunkedBodyLimit:
    """WSGI middleware: a chunked request body is read here, at most one byte past the limit,
    and handed on as a sized body.

    Werkzeug reads a chunked body up to ``MAX_CONTENT_LENGTH`` and silently stops there, so an
    oversized body arrived cut short (a 400 "not valid JSON" instead of a 413). Given a length,
    the app refuses it exactly as it refuses an oversized sized body: 413, on the API and on the
    web forms alike. The body is buffered, as Werkzeug buffers a sized one to parse it.
    """

    def __init__(self, app: WSGIApplication, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        # Servers mark a body they delimit themselves (chunked) with wsgi.input_terminated.
        if environ.get("wsgi.input_terminated") and get_content_length(environ) is None:
            body = _read_at_most(environ["wsgi.input"], self.max_bytes + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            environ.pop("HTTP_TRANSFER_ENCODING", None)  # else Werkzeug ignores the length
        return self.app(environ, start_response)


def _read_at_most(stream: IO[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(min(64 * 1024, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)
