"""The CloudEvents Kafka binding's two content modes, decoded without a broker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shared.events import (
    CE_CONTENT_TYPE,
    Contact,
    EventError,
    Lead,
    make_event,
    parse_record,
    utcnow,
)
from shared.kafka import _carried_headers
from tests.ecosystem.test_cloudevents_kafka import binary_mode

EVENT = make_event(
    type="lead.received",
    source="/baton/intake",
    subject="lead-1",
    data=Lead(
        lead_id="lead-1", received_at=utcnow(), source="s", channel="form", contact=Contact()
    ),
)


def test_binary_and_structured_records_decode_to_the_same_event() -> None:
    value, headers = binary_mode(EVENT)
    assert parse_record(value, headers) == EVENT
    assert parse_record(EVENT.to_bytes(), [("content-type", CE_CONTENT_TYPE.encode())]) == EVENT
    assert parse_record(EVENT.to_bytes(), ()) == EVENT  # records from before the header


@pytest.mark.parametrize(
    ("drop", "content_type", "fragment"),
    [
        ("ce_id", b"application/json", "id: missing"),
        (None, b"text/plain", "unsupported binary-mode datacontenttype"),
        (None, b"application/cloudevents-batch+json", "batched"),
    ],
)
def test_an_unusable_binary_record_is_poison(
    drop: str | None, content_type: bytes, fragment: str
) -> None:
    value, headers = binary_mode(EVENT)
    headers = [(k, content_type if k == "content-type" else v) for k, v in headers if k != drop]
    with pytest.raises(EventError, match=fragment):
        parse_record(value, headers)


def test_a_dead_letter_keeps_the_records_mode() -> None:
    value, headers = binary_mode(EVENT)
    binary = SimpleNamespace(value=value, headers=[*headers, ("baton-error", b"old")])
    assert _carried_headers(binary, "handler_error") == headers
    bare = SimpleNamespace(value=EVENT.to_bytes(), headers=())
    assert _carried_headers(bare, "handler_error") == [("content-type", CE_CONTENT_TYPE.encode())]
    assert _carried_headers(bare, "poison") == []
