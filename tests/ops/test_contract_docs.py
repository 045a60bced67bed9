"""The committed contract docs are exactly what the code generates (`baton docs` refreshes them)."""

from __future__ import annotations

from shared.contract_docs import asyncapi, render
from shared.events import EVENT_TYPES


def test_committed_docs_match_the_code() -> None:
    stale = [
        str(path.relative_to(path.parents[1]))
        for path, text in render().items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"run `baton docs` and commit: {stale} drifted from the code"


def test_every_event_type_has_a_message_on_a_channel() -> None:
    doc = asyncapi()
    names = {m["name"] for m in doc["components"]["messages"].values()}
    assert names == set(EVENT_TYPES)
    on_channels = {
        ref["$ref"].rsplit("/", 1)[1]
        for ch in doc["channels"].values()
        for ref in ch.get("messages", {}).values()
    }
    assert on_channels == set(doc["components"]["messages"])
    assert doc["asyncapi"].startswith("3.")
