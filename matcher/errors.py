"""Domain errors. One handler (``matcher.api.problems``) turns them into RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

from matcher.i18n import Message


class DomainError(Exception):
    """A rule of the service said no; carries what the client needs to fix it."""

    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str | Message, *, errors: dict[str, Any] | None = None) -> None:
        # A refusal the pages show comes as a Message: the API's detail is its English text,
        # the pages say it in the reader's language (never by matching the English).
        self.message = detail if isinstance(detail, Message) else None
        self.detail = detail.english() if isinstance(detail, Message) else detail
        super().__init__(self.detail)
        self.errors = errors


class NotFound(DomainError):
    """Absent, or outside the caller's scope (which is not revealed)."""

    status = 404
    slug = "not-found"
    title = "Not found"


def not_found(kind: str, ident: int | str) -> NotFound:
    """The one answer for an id that was never used *and* for a resource outside the caller's
    scope (security.md): built from what the caller asked for only, so the two are the same
    bytes — never an owner, a unit or a run of the resource."""
    return NotFound(f"No {kind} {ident}.")


class Forbidden(DomainError):
    """The caller may see the resource but not do this to it."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class Unauthorized(DomainError):
    """No valid key was presented."""

    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Conflict(DomainError):
    """The request clashes with the current state of the data."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class ValidationFailed(DomainError):
    """Field-level problems found by a domain rule (e.g. an unknown skill tag)."""

    status = 422
    slug = "validation-error"
    title = "Validation failed"


class PreconditionFailed(DomainError):
    """The resource changed since the client read it (``If-Match`` no longer matches)."""

    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PreconditionRequired(DomainError):
    """A change that needs ``If-Match`` came without it."""

    status = 428
    slug = "precondition-required"
    title = "Precondition required"
