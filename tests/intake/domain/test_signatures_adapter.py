"""Intake's signature module raises intake's own error type (the schemes are tested in
tests/shared/test_signatures.py): intake's API counts a refused webhook by `IntakeError`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from services.intake.domain.errors import IntakeError, InvalidSignature
from services.intake.domain.signatures import (
    verify_hubspot_v3,
    verify_standard_webhooks,
    verify_typeform,
)

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"b" * 24).decode()
BODY = b'{"email":"jane@acme.com"}'


def test_a_good_signature_still_returns_the_webhook_id() -> None:
    headers = {
        "webhook-id": "msg_9",
        "webhook-timestamp": str(int(NOW.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_9", NOW, BODY.decode()),
    }
    assert verify_standard_webhooks(headers, BODY, [SECRET], NOW) == "msg_9"


@pytest.mark.parametrize("scheme", ["standard-webhooks", "typeform", "hubspot-v3"])
def test_every_scheme_refuses_with_intakes_invalid_signature_naming_the_header(
    scheme: str,
) -> None:
    with pytest.raises(InvalidSignature) as info:
        if scheme == "standard-webhooks":
            verify_standard_webhooks({}, BODY, [SECRET], NOW)
        elif scheme == "typeform":
            verify_typeform({}, BODY, ["s"], NOW)
        else:
            verify_hubspot_v3({}, BODY, ["s"], NOW, method="POST", uri="https://x.test/a")
    assert isinstance(info.value, IntakeError) and info.value.status == 401
    assert info.value.fields and all(f["name"] for f in info.value.fields)
