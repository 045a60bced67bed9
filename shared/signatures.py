"""Webhook signature verification (pure: the caller passes `now`).

Shared by every service that receives signed webhooks (intake's lead sources, followup's
activity sources), so each scheme is implemented once.

Why hand-written instead of vendor SDKs: we need one behaviour for all schemes (several secrets
for key rotation, constant-time comparison, errors that say *what* failed without leaking the
secret or the expected value), and no SDK does network or clock reads behind our back.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from shared.errors import DomainError


class InvalidSignature(DomainError):
    """The request is not signed by the configured sender (401); `fields` name the headers."""

    status = 401
    type_slug = "invalid-signature"
    title = "Missing or invalid signature"


TOLERANCE_SECONDS = 5 * 60
_MAX_SIGNATURES = 32  # bound the work one request can cause
_WHSEC_PREFIX = "whsec_"
# HubSpot v3: percent-encodings HubSpot decodes in the URI before signing (its docs' table).
_HUBSPOT_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}  # fmt: skip
_HUBSPOT_DECODE_RE = re.compile("|".join(_HUBSPOT_DECODE), re.IGNORECASE)


def _epoch_seconds(now: datetime | int | float) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.timestamp()
    return float(now)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for plain dicts and framework header objects."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        for key, candidate in headers.items():
            if key.lower() == wanted:
                value = candidate
                break
    if value is None:
        return None
    value = value.strip()
    return value or None


def _require_secrets(secrets: Sequence[str]) -> None:
    if isinstance(secrets, str) or not secrets:
        raise InvalidSignature("no verification secret is configured for this source")


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _refuse(detail: str, *headers: str) -> InvalidSignature:
    """InvalidSignature naming the header(s) at fault (names only, never values)."""
    return InvalidSignature(detail, fields=[{"name": h, "message": detail} for h in headers])


def _check_age(age_seconds: float, header: str) -> None:
    if age_seconds > TOLERANCE_SECONDS:
        raise _refuse("timestamp is too old (more than 5 minutes)", header)
    if age_seconds < -TOLERANCE_SECONDS:
        raise _refuse("timestamp is too far in the future (more than 5 minutes)", header)


def _matches_any(expected: Sequence[bytes], presented: Sequence[bytes]) -> bool:
    """Compare every pair in constant time; no early exit reveals which secret matched."""
    found = False
    for mac in expected:
        for candidate in presented:
            found = hmac.compare_digest(mac, candidate) | found
    return found


# --- Standard Webhooks ----------------------------------------------------------------------


def decode_standard_webhooks_secret(secret: str) -> bytes:
    """Key bytes of a `whsec_<base64>` secret; raises ValueError so config can fail at start-up."""
    raw = secret[len(_WHSEC_PREFIX) :] if secret.startswith(_WHSEC_PREFIX) else secret
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not valid base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _standard_signatures(header: str) -> list[bytes]:
    sigs: list[bytes] = []
    for entry in header.split()[:_MAX_SIGNATURES]:
        version, sep, value = entry.partition(",")
        if not sep or version != "v1":
            continue  # other versions (e.g. v1a asymmetric) are not ours to check
        try:
            sigs.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return sigs


def verify_standard_webhooks(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime | int | float,
) -> str:
    """Verify per the Standard Webhooks spec; return the `webhook-id` (the idempotency key)."""
    _require_secrets(secrets)
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signature = _header(headers, "webhook-signature")
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        )
        if value is None
    ]
    if missing or msg_id is None or timestamp is None or signature is None:
        raise _refuse(f"missing header(s): {', '.join(missing)}", *missing)
    if not timestamp.isascii() or not timestamp.isdigit():
        raise _refuse("webhook-timestamp is not an integer number of seconds", "webhook-timestamp")
    _check_age(_epoch_seconds(now) - int(timestamp), "webhook-timestamp")
    presented = _standard_signatures(signature)
    if not presented:
        raise _refuse("webhook-signature holds no well-formed v1 signature", "webhook-signature")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = [_hmac_sha256(decode_standard_webhooks_secret(s), signed) for s in secrets]
    if not _matches_any(expected, presented):
        raise _refuse("signature does not match", "webhook-signature")
    return msg_id


# --- Typeform -------------------------------------------------------------------------------


def verify_typeform(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime | int | float | None = None,
) -> None:
    """`Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>`.

    Typeform signs no timestamp, so `now` is accepted for a uniform signature but unused;
    replays are caught by the idempotency key (the form_response token) instead.
    """
    _require_secrets(secrets)
    header = _header(headers, "Typeform-Signature")
    if header is None:
        raise _refuse("missing header: Typeform-Signature", "Typeform-Signature")
    scheme, sep, value = header.partition("=")
    if not sep or scheme != "sha256" or not value:
        raise _refuse("Typeform-Signature is not of the form sha256=<base64>", "Typeform-Signature")
    presented = [value.encode("utf-8", "replace")]
    expected = [_b64(_hmac_sha256(s.encode(), body)).encode() for s in secrets]
    if not _matches_any(expected, presented):
        raise _refuse("signature does not match", "Typeform-Signature")


# --- HubSpot v3 -----------------------------------------------------------------------------


def hubspot_signed_uri(uri: str) -> str:
    """Decode the percent-encodings HubSpot lists before it signs the request URI."""
    return _HUBSPOT_DECODE_RE.sub(lambda m: _HUBSPOT_DECODE[m.group(0).upper()], uri)


def verify_hubspot_v3(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    now: datetime | int | float,
    *,
    method: str,
    uri: str,
) -> None:
    """`X-HubSpot-Signature-v3` = base64(HMAC-SHA256(client secret, method+uri+body+timestamp)).

    `uri` is the full URL HubSpot called (scheme, host, path and query). HubSpot only asks to
    reject timestamps older than 5 minutes; we also refuse ones more than 5 minutes ahead,
    because a far-future timestamp would otherwise be replayable for as long as it lies ahead.
    """
    _require_secrets(secrets)
    signature = _header(headers, "X-HubSpot-Signature-v3")
    timestamp = _header(headers, "X-HubSpot-Request-Timestamp")
    missing = [
        name
        for name, value in (
            ("X-HubSpot-Signature-v3", signature),
            ("X-HubSpot-Request-Timestamp", timestamp),
        )
        if value is None
    ]
    if missing or signature is None or timestamp is None:
        raise _refuse(f"missing header(s): {', '.join(missing)}", *missing)
    if not timestamp.isascii() or not timestamp.isdigit():
        raise _refuse(
            "X-HubSpot-Request-Timestamp is not an integer of milliseconds",
            "X-HubSpot-Request-Timestamp",
        )
    _check_age(_epoch_seconds(now) - int(timestamp) / 1000, "X-HubSpot-Request-Timestamp")
    signed = (method.upper() + hubspot_signed_uri(uri)).encode() + body + timestamp.encode()
    expected = [_b64(_hmac_sha256(s.encode(), signed)).encode() for s in secrets]
    if not _matches_any(expected, [signature.encode("utf-8", "replace")]):
        raise _refuse("signature does not match", "X-HubSpot-Signature-v3")
