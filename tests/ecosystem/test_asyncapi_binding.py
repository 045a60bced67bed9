"""The AsyncAPI document says what a Kafka client needs: servers, headers, the key."""

from __future__ import annotations

from typing import Any

from ops.contract_docs import asyncapi
from shared.events import CE_CONTENT_TYPE


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    found: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return dict(found)


def test_every_message_declares_the_structured_mode_header_and_its_key() -> None:
    doc = asyncapi()
    assert doc["servers"]["local"]["protocol"] == "kafka"
    for name, message in doc["components"]["messages"].items():
        headers = _resolve(doc, message["headers"])
        assert headers["properties"]["content-type"]["const"] == CE_CONTENT_TYPE, name
        assert headers["required"] == ["content-type"], name
        key = message["bindings"]["kafka"]["key"]
        assert key["type"] == "string" and "(= subject)" in key["description"], name
    assigned = doc["components"]["messages"]["LeadAssigned"]["bindings"]["kafka"]["key"]
    assert assigned["description"].startswith("the lead id")


def test_every_channel_has_its_kafka_topic_binding() -> None:
    doc = asyncapi()
    for channel in doc["channels"].values():
        binding = channel["bindings"]["kafka"]
        assert binding["topic"] == channel["address"]
        assert binding["partitions"] >= 1 and binding["replicas"] >= 1
