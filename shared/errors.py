"""Errors raised below the API layer, free of any web framework.

Service and domain code raise these with the HTTP status and problem type they map to; only
`shared/http.py` (the API edge) turns them into RFC 9457 responses. Keeping the base class here
lets `domain/` and `service.py` modules import it without importing FastAPI.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base for errors raised below the API layer; they carry their HTTP status."""

    status: int = 400
    type_slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        fields: list[dict[str, str]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or []
        self.retry_after = retry_after


class LeadNotFound(DomainError):
    """The lead id names no lead this service (or tool) knows."""

    status = 404
    type_slug = "lead-not-found"
    title = "Lead not found"
