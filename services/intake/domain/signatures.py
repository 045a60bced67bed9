"""Intake's signature checks: the shared implementation (`shared.signatures`), raising
intake's own `InvalidSignature`.

The schemes live in `shared/` because followup verifies activity webhooks with them too. This
module only translates the shared 401 into intake's error type, so intake's API keeps counting
a bad signature as `status="401"` (it counts by `IntakeError`) and nothing else in intake
changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

from shared import signatures as _shared
from shared.signatures import (
    TOLERANCE_SECONDS,
    decode_standard_webhooks_secret,
    hubspot_signed_uri,
)

from .errors import InvalidSignature

__all__ = [
    "TOLERANCE_SECONDS",
    "decode_standard_webhooks_secret",
    "hubspot_signed_uri",
    "verify_hubspot_v3",
    "verify_standard_webhooks",
    "verify_typeform",
]


@contextmanager
def _as_intake_error() -> Iterator[None]:
    try:
        yield
    except _shared.InvalidSignature as exc:
        raise InvalidSignature(exc.detail, fields=exc.fields) from None


def verify_standard_webhooks(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], now: datetime | int | float
) -> str:
    with _as_intake_error():
        return _shared.verify_standard_webhooks(headers, body, secrets, now)


def verify_typeform(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime | int | float | None = None,
) -> None:
    with _as_intake_error():
        _shared.verify_typeform(headers, body, secrets, now)


def verify_hubspot_v3(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime | int | float,
    *,
    method: str,
    uri: str,
) -> None:
    with _as_intake_error():
        _shared.verify_hubspot_v3(headers, body, secrets, now, method=method, uri=uri)
