"""Activity webhook mapping (pure): where each field comes from, ids, times, refusals."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.followup.domain.webhooks import (
    UnmappedActivity,
    map_activity,
    parse_instant,
)
from shared.payload_paths import lookup
from shared.policy import ActivitySource

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LEAD = str(uuid.uuid4())

SOURCE = ActivitySource.model_validate(
    {
        "name": "crm",
        "auth": {"scheme": "standard-webhooks", "secret_env": "X"},
        "fields": {
            "activity_id": "data.id",
            "lead_id": "data.lead",
            "type": "data.kind",
            "at": "data.at",
            "actor": "data.user",
            "note": "data.note",
            "reengage_at": "data.later",
        },
        "types": {"call": "contacted", "later": "not_ready", "true": "accepted"},
        "actors": {"u-1": "rep-anna"},
    }
)


def payload(**data: Any) -> dict[str, Any]:
    return {"data": {"lead": LEAD, "kind": "call", "user": "u-2", **data}}


def refusal(p: dict[str, Any], source: ActivitySource = SOURCE) -> list[str]:
    with pytest.raises(UnmappedActivity) as info:
        map_activity(source, p, delivery_id=None, body=b"{}", now=NOW)
    assert info.value.status == 422
    return [f["name"] for f in info.value.fields]


def test_every_field_comes_from_its_location_and_types_and_actors_are_mapped() -> None:
    act = map_activity(
        SOURCE,
        payload(id="e-1", user="u-1", at="2026-11-30T10:12:00+01:00", note=" left voicemail "),
        delivery_id="msg_1",
        body=b"{}",
        now=NOW,
    )
    assert act.activity_id == "crm:e-1"  # the tool's id wins over the delivery id
    assert act.lead_id == LEAD and act.type == "contacted" and act.actor == "rep-anna"
    assert act.at == datetime(2026, 11, 30, 9, 12, tzinfo=UTC)
    assert act.note == "left voicemail" and act.reengage_at is None


def test_activity_id_falls_back_to_the_delivery_id_then_to_the_body() -> None:
    by_delivery = map_activity(SOURCE, payload(), delivery_id="msg_7", body=b"x", now=NOW)
    assert by_delivery.activity_id == "crm:msg_7"
    by_body = map_activity(SOURCE, payload(), delivery_id=None, body=b"x", now=NOW)
    assert by_body.activity_id == "crm:" + hashlib.sha256(b"x").hexdigest()[:32]
    other = map_activity(SOURCE, payload(), delivery_id=None, body=b"y", now=NOW)
    assert other.activity_id != by_body.activity_id
    assert by_body.at == NOW  # no time in the payload: the time it arrived


def test_lead_ids_are_normalised_and_a_bad_one_names_its_location() -> None:
    upper = map_activity(SOURCE, payload(lead=LEAD.upper()), delivery_id="m", body=b"", now=NOW)
    assert upper.lead_id == LEAD
    assert refusal(payload(lead="HS-17")) == ["data.lead"]
    assert refusal(payload(lead=None)) == ["data.lead"]
    assert refusal(payload(lead="")) == ["data.lead"]


def test_types_not_in_the_mapping_are_refused_and_values_are_compared_as_text() -> None:
    assert refusal(payload(kind="voicemail")) == ["data.kind"]
    assert refusal(payload(kind={"name": "call"})) == ["data.kind"]
    boolean = map_activity(SOURCE, payload(kind=True), delivery_id="m", body=b"", now=NOW)
    assert boolean.type == "accepted"


def test_without_a_types_mapping_the_value_must_be_an_activity_type() -> None:
    plain = SOURCE.model_copy(update={"types": {}})
    act = map_activity(plain, payload(kind="converted"), delivery_id="m", body=b"", now=NOW)
    assert act.type == "converted"
    assert refusal(payload(kind="call"), plain) == ["data.kind"]


def test_a_fixed_type_needs_no_type_in_the_payload() -> None:
    fields = {k: v for k, v in SOURCE.fields.items() if k != "type"}
    fixed = SOURCE.model_copy(update={"fields": fields, "types": {}, "type": "contacted"})
    act = map_activity(fixed, payload(kind="anything"), delivery_id="m", body=b"", now=NOW)
    assert act.type == "contacted"


def test_not_ready_needs_its_date_and_times_must_be_readable() -> None:
    assert refusal(payload(kind="later")) == ["data.later"]
    later = map_activity(
        SOURCE, payload(kind="later", later="1803891600000"), delivery_id="m", body=b"", now=NOW
    )
    assert later.type == "not_ready"
    assert later.reengage_at == datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    assert refusal(payload(kind="later", later="2027-03-01T09:00:00")) == ["data.later"]  # naive
    assert refusal(payload(at="yesterday")) == ["data.at"]
    assert refusal(payload(at=True)) == ["data.at"]


def test_actor_is_required_and_long_values_are_handled() -> None:
    assert refusal(payload(user=None)) == ["data.user"]
    assert refusal(payload(user=["a"])) == ["data.user"]
    assert refusal(payload(id="x" * 201)) == ["data.id"]  # ids are never cut (they would merge)
    act = map_activity(SOURCE, payload(note="n" * 5000), delivery_id="m", body=b"", now=NOW)
    assert act.note == "n" * 2000  # a long CRM note does not cost the activity


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-30T10:00:00+01:00", datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
        ("2026-11-30T09:00:00Z", datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
        (1764493200000, datetime(2025, 11, 30, 9, 0, tzinfo=UTC)),  # HubSpot: milliseconds
        ("1764493200000", datetime(2025, 11, 30, 9, 0, tzinfo=UTC)),
        (1764493200, datetime(2025, 11, 30, 9, 0, tzinfo=UTC)),  # seconds
        (1764493200.5, datetime(2025, 11, 30, 9, 0, 0, 500000, tzinfo=UTC)),
        ("2026-11-30T09:00:00", None),  # no offset: which zone?
        ("soon", None),
        (True, None),
        (None, None),
        (10**30, None),
    ],
)
def test_parse_instant(raw: object, expected: datetime | None) -> None:
    assert parse_instant(raw) == expected


def test_parse_instant_keeps_the_offset_it_was_given() -> None:
    parsed = parse_instant("2026-11-30T10:00:00+01:00")
    assert parsed is not None and parsed.utcoffset() == timedelta(hours=1)
    assert parsed.tzinfo == timezone(timedelta(hours=1))


def test_lookup_dot_paths_list_indexes_and_dotted_keys() -> None:
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "x.y": "flat", "p": {"q": None}}
    assert lookup(doc, "a.b.1.c") == 2
    assert lookup(doc, "a.b.5.c") is None
    assert lookup(doc, "x.y") == "flat"
    assert lookup(doc, "p.q.r") is None
    assert lookup(doc, "a.b.c") is None
    assert lookup(doc, "properties.baton_lead_id.value") is None
