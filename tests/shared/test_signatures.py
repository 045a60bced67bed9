"""Signature verification, signed by the reference library where one exists."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from shared.signatures import (
    InvalidSignature,
    decode_standard_webhooks_secret,
    hubspot_signed_uri,
    verify_hubspot_v3,
    verify_standard_webhooks,
    verify_typeform,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"a" * 24).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"old-secret-32-bytes-long-xxxxxxx").decode()
BODY = b'{"email":"jane@acme.com","first_name":"Jane"}'


def sw_headers(
    secret: str, body: bytes, at: datetime = NOW, msg_id: str = "msg_1"
) -> dict[str, str]:
    sig = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": sig,
    }


# --- Standard Webhooks ----------------------------------------------------------------------


def test_standard_webhooks_accepts_reference_signature_and_returns_id() -> None:
    headers = sw_headers(SECRET, BODY)
    assert verify_standard_webhooks(headers, BODY, [SECRET], NOW) == "msg_1"


def test_standard_webhooks_headers_are_case_insensitive_and_now_may_be_int() -> None:
    headers = {k.title(): v for k, v in sw_headers(SECRET, BODY).items()}
    assert verify_standard_webhooks(headers, BODY, [SECRET], int(NOW.timestamp())) == "msg_1"


def test_our_verification_agrees_with_reference_verify() -> None:
    """Both directions: the reference library accepts what we accept."""
    headers = sw_headers(SECRET, BODY, at=datetime.now(tz=UTC))
    Webhook(SECRET).verify(BODY, headers)  # raises if the reference disagrees
    verify_standard_webhooks(headers, BODY, [SECRET], datetime.now(tz=UTC))


def test_standard_webhooks_several_signatures_in_header() -> None:
    headers = sw_headers(SECRET, BODY)
    other = Webhook(OLD_SECRET).sign("msg_1", NOW, BODY.decode())
    headers["webhook-signature"] = f"v1a,ignored {other} {headers['webhook-signature']}"
    assert verify_standard_webhooks(headers, BODY, [SECRET], NOW) == "msg_1"


def test_standard_webhooks_secret_without_prefix_and_unpadded() -> None:
    raw = base64.b64encode(b"k" * 20).decode().rstrip("=")
    headers = sw_headers("whsec_" + raw, BODY)
    assert verify_standard_webhooks(headers, BODY, [raw], NOW) == "msg_1"


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_webhooks_missing_header(missing: str) -> None:
    headers = sw_headers(SECRET, BODY)
    del headers[missing]
    with pytest.raises(InvalidSignature, match=missing):
        verify_standard_webhooks(headers, BODY, [SECRET], NOW)


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)]
)
def test_standard_webhooks_stale_either_direction(offset: timedelta) -> None:
    headers = sw_headers(SECRET, BODY, at=NOW + offset)
    with pytest.raises(InvalidSignature, match="timestamp"):
        verify_standard_webhooks(headers, BODY, [SECRET], NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-5), timedelta(minutes=5)])
def test_standard_webhooks_tolerance_boundary_inclusive(offset: timedelta) -> None:
    headers = sw_headers(SECRET, BODY, at=NOW + offset)
    assert verify_standard_webhooks(headers, BODY, [SECRET], NOW) == "msg_1"


@pytest.mark.parametrize("bad", ["soon", "12.5", "-5", ""])
def test_standard_webhooks_malformed_timestamp(bad: str) -> None:
    headers = sw_headers(SECRET, BODY) | {"webhook-timestamp": bad}
    with pytest.raises(InvalidSignature):
        verify_standard_webhooks(headers, BODY, [SECRET], NOW)


@pytest.mark.parametrize("bad", ["garbage", "v1,@@@notbase64", "v2,abcd"])
def test_standard_webhooks_malformed_signature(bad: str) -> None:
    headers = sw_headers(SECRET, BODY) | {"webhook-signature": bad}
    with pytest.raises(InvalidSignature, match="no well-formed v1"):
        verify_standard_webhooks(headers, BODY, [SECRET], NOW)


def test_standard_webhooks_wrong_secret_and_error_does_not_leak_secret() -> None:
    headers = sw_headers(OLD_SECRET, BODY)
    with pytest.raises(InvalidSignature, match="does not match") as info:
        verify_standard_webhooks(headers, BODY, [SECRET], NOW)
    assert SECRET not in str(info.value) and headers["webhook-signature"] not in str(info.value)
    assert info.value.status == 401


def test_standard_webhooks_changed_id_fails() -> None:
    headers = sw_headers(SECRET, BODY) | {"webhook-id": "msg_2"}
    with pytest.raises(InvalidSignature):
        verify_standard_webhooks(headers, BODY, [SECRET], NOW)


def test_no_secret_configured_fails_closed() -> None:
    with pytest.raises(InvalidSignature, match="no verification secret"):
        verify_standard_webhooks(sw_headers(SECRET, BODY), BODY, [], NOW)


def test_invalid_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        decode_standard_webhooks_secret("whsec_!!!")


@settings(max_examples=60, deadline=None)
@given(body=st.binary(min_size=1, max_size=200), data=st.data())
def test_standard_webhooks_any_single_byte_change_of_body_fails(
    body: bytes, data: st.DataObject
) -> None:
    body_text = body.decode("latin-1").encode()  # the reference lib signs text
    headers = sw_headers(SECRET, body_text)
    assert verify_standard_webhooks(headers, body_text, [SECRET], NOW) == "msg_1"
    index = data.draw(st.integers(0, len(body_text) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(body_text)
    tampered[index] ^= flip
    with pytest.raises(InvalidSignature):
        verify_standard_webhooks(headers, bytes(tampered), [SECRET], NOW)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_standard_webhooks_any_single_byte_change_of_signature_fails(data: st.DataObject) -> None:
    headers = sw_headers(SECRET, BODY)
    sig = base64.b64decode(headers["webhook-signature"].split(",", 1)[1])
    index = data.draw(st.integers(0, len(sig) - 1))
    tampered = bytearray(sig)
    tampered[index] ^= data.draw(st.integers(1, 255))
    headers["webhook-signature"] = "v1," + base64.b64encode(bytes(tampered)).decode()
    with pytest.raises(InvalidSignature):
        verify_standard_webhooks(headers, BODY, [SECRET], NOW)


@settings(max_examples=40, deadline=None)
@given(
    keys=st.lists(st.binary(min_size=16, max_size=40), min_size=1, max_size=4, unique=True),
    data=st.data(),
)
def test_rotation_any_configured_secret_verifies(keys: list[bytes], data: st.DataObject) -> None:
    secrets = ["whsec_" + base64.b64encode(k).decode() for k in keys]
    signer = data.draw(st.sampled_from(secrets))
    assert verify_standard_webhooks(sw_headers(signer, BODY), BODY, secrets, NOW) == "msg_1"
    # not b"\x00" + key: HMAC zero-pads short keys, so trailing-zero variants are equivalent
    fresh = hashlib.sha256(b"".join(keys)).digest() + b"x"
    outsider = "whsec_" + base64.b64encode(fresh).decode()
    with pytest.raises(InvalidSignature):
        verify_standard_webhooks(sw_headers(outsider, BODY), BODY, secrets, NOW)


# --- Typeform -------------------------------------------------------------------------------


def typeform_sig(secret: str, body: bytes) -> str:
    """Independent of our code: the recipe from Typeform's documentation."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def test_typeform_valid_and_rotation() -> None:
    headers = {"Typeform-Signature": typeform_sig("tf-secret-new", BODY)}
    verify_typeform(headers, BODY, ["tf-secret-old", "tf-secret-new"])
    verify_typeform({"typeform-signature": headers["Typeform-Signature"]}, BODY, ["tf-secret-new"])


def test_typeform_known_vector() -> None:
    """Fixed vector so a change in our recipe (hex vs base64, prefix) cannot go unnoticed."""
    body = b'{"event_id":"01ABC","event_type":"form_response"}'
    expected = base64.b64encode(hmac.new(b"abc123", body, hashlib.sha256).digest()).decode()
    verify_typeform({"Typeform-Signature": f"sha256={expected}"}, body, ["abc123"])
    hex_sig = hmac.new(b"abc123", body, hashlib.sha256).hexdigest()
    with pytest.raises(InvalidSignature):
        verify_typeform({"Typeform-Signature": f"sha256={hex_sig}"}, body, ["abc123"])


@pytest.mark.parametrize(
    ("headers", "match"),
    [
        ({}, "missing"),
        ({"Typeform-Signature": "sha1=abc"}, "form"),
        ({"Typeform-Signature": "abc"}, "form"),
        ({"Typeform-Signature": "sha256="}, "form"),
        ({"Typeform-Signature": "sha256=AAAA"}, "does not match"),
    ],
)
def test_typeform_rejections(headers: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidSignature, match=match):
        verify_typeform(headers, BODY, ["tf-secret"])


@settings(max_examples=60, deadline=None)
@given(body=st.binary(min_size=1, max_size=200), data=st.data())
def test_typeform_any_single_byte_change_fails(body: bytes, data: st.DataObject) -> None:
    headers = {"Typeform-Signature": typeform_sig("s3cr3t", body)}
    verify_typeform(headers, body, ["s3cr3t"])
    tampered = bytearray(body)
    tampered[data.draw(st.integers(0, len(body) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(InvalidSignature):
        verify_typeform(headers, bytes(tampered), ["s3cr3t"])


# --- HubSpot v3 -----------------------------------------------------------------------------

HS_SECRET = "hs-client-secret"
HS_URI = "https://leads.example.com/v1/webhooks/hubspot-forms?portal=123"


def hubspot_sig(secret: str, method: str, uri: str, body: bytes, ts: str) -> str:
    """The documented recipe, written out independently of the implementation."""
    source = f"{method}{uri}".encode() + body + ts.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def hs_headers(ts_ms: int, sig: str) -> dict[str, str]:
    return {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(ts_ms)}


def test_hubspot_valid() -> None:
    ts = str(int(NOW.timestamp() * 1000) - 10_000)
    headers = hs_headers(int(ts), hubspot_sig(HS_SECRET, "POST", HS_URI, BODY, ts))
    verify_hubspot_v3(headers, BODY, ["old", HS_SECRET], NOW, method="POST", uri=HS_URI)


def test_hubspot_decodes_listed_characters_in_uri() -> None:
    encoded = "https://leads.example.com/v1/webhooks/hs?next=%2Fthanks%3Fa%3Ab&q=%40x%21%2c%20y"
    signed_as = "https://leads.example.com/v1/webhooks/hs?next=/thanks?a:b&q=@x!,%20y"
    assert hubspot_signed_uri(encoded) == signed_as
    ts = str(int(NOW.timestamp() * 1000))
    headers = hs_headers(int(ts), hubspot_sig(HS_SECRET, "POST", signed_as, BODY, ts))
    verify_hubspot_v3(headers, BODY, [HS_SECRET], NOW, method="POST", uri=encoded)


def test_hubspot_stale_timestamp() -> None:
    ts = str(int(NOW.timestamp() * 1000) - 301_000)
    headers = hs_headers(int(ts), hubspot_sig(HS_SECRET, "POST", HS_URI, BODY, ts))
    with pytest.raises(InvalidSignature, match="too old"):
        verify_hubspot_v3(headers, BODY, [HS_SECRET], NOW, method="POST", uri=HS_URI)


def test_hubspot_timestamp_is_part_of_signature() -> None:
    ts = str(int(NOW.timestamp() * 1000))
    headers = hs_headers(int(ts) + 1, hubspot_sig(HS_SECRET, "POST", HS_URI, BODY, ts))
    with pytest.raises(InvalidSignature, match="does not match"):
        verify_hubspot_v3(headers, BODY, [HS_SECRET], NOW, method="POST", uri=HS_URI)


@pytest.mark.parametrize("field", ["method", "uri", "body"])
def test_hubspot_request_parts_are_signed(field: str) -> None:
    ts = str(int(NOW.timestamp() * 1000))
    headers = hs_headers(int(ts), hubspot_sig(HS_SECRET, "POST", HS_URI, BODY, ts))
    method = "PUT" if field == "method" else "POST"
    uri = HS_URI + "&x=1" if field == "uri" else HS_URI
    body = BODY + b" " if field == "body" else BODY
    with pytest.raises(InvalidSignature):
        verify_hubspot_v3(headers, body, [HS_SECRET], NOW, method=method, uri=uri)


def test_hubspot_missing_and_malformed_headers() -> None:
    with pytest.raises(InvalidSignature, match="X-HubSpot-Request-Timestamp"):
        verify_hubspot_v3(
            {"X-HubSpot-Signature-v3": "abc"}, BODY, [HS_SECRET], NOW, method="POST", uri=HS_URI
        )
    with pytest.raises(InvalidSignature, match="milliseconds"):
        verify_hubspot_v3(
            {"X-HubSpot-Signature-v3": "abc", "X-HubSpot-Request-Timestamp": "yesterday"},
            BODY,
            [HS_SECRET],
            NOW,
            method="POST",
            uri=HS_URI,
        )
