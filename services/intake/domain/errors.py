"""Intake domain errors.

Each error carries the HTTP status and problem type it maps to, so the API layer can turn any of
them into an RFC 9457 problem document without a lookup table, and the domain never imports a web
framework. Messages name fields, never their values: exceptions end up in logs.
"""

from __future__ import annotations

from typing import ClassVar


class IntakeError(Exception):
    """Base of every error intake reports to the caller."""

    status: ClassVar[int] = 400
    type_slug: ClassVar[str] = "intake-error"
    title: ClassVar[str] = "Intake error"
    # The part of the request at fault when the raise site names none (a header or "body").
    default_field: ClassVar[str | None] = None

    def __init__(self, detail: str, *, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if fields is None and self.default_field is not None:
            fields = [{"name": self.default_field, "message": detail}]
        self.fields: list[dict[str, str]] = list(fields or [])

    @property
    def field(self) -> str | None:
        """Name of the first offending field, if a field is at fault."""
        return self.fields[0]["name"] if self.fields else None


class MalformedBody(IntakeError):
    status = 400
    type_slug = "malformed-body"
    title = "Malformed request body"
    default_field = "body"


class InvalidSignature(IntakeError):
    status = 401
    type_slug = "invalid-signature"
    title = "Missing or invalid signature"


class OriginNotAllowed(IntakeError):
    status = 403
    type_slug = "origin-not-allowed"
    title = "Origin not allowed"
    default_field = "origin"


class UnknownSource(IntakeError):
    status = 404
    type_slug = "unknown-source"
    title = "Unknown source"


class BodyTooLarge(IntakeError):
    status = 413
    type_slug = "body-too-large"
    title = "Request body too large"
    default_field = "body"


class UnsupportedMediaType(IntakeError):
    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"
    default_field = "content-type"


class NoUsableContact(IntakeError):
    status = 422
    type_slug = "no-usable-contact"
    title = "No usable contact"


class InvalidField(IntakeError):
    status = 422
    type_slug = "invalid-field"
    title = "Invalid field"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail, fields=[{"name": field, "message": detail}])


class _RetryableError(IntakeError):
    """Errors the client should retry later; `retry_after` feeds the Retry-After header."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class RateLimited(_RetryableError):
    status = 429
    type_slug = "rate-limited"
    title = "Too many requests"


class Unavailable(_RetryableError):
    status = 503
    type_slug = "unavailable"
    title = "Service unavailable"
