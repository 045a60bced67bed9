"""Reading a value out of a sender's JSON payload by the location the policy names.

Intake's lead sources and followup's activity sources map vendors' payloads the same way,
so the rule is written once: a top-level key (which may itself contain dots) first, then a
dot path through objects and list indexes (`items.0.value`). Pure; absence is None, never
an error (the caller decides whether a missing value is one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def lookup(payload: Mapping[str, Any], location: str) -> object | None:
    """Value at `location` (a top-level key, else a dot path), or None when absent."""
    if location in payload:
        found: object = payload[location]
        return found
    return dot_path(payload, location)


def dot_path(node: object, location: str) -> object | None:
    """Value at a dot path through objects and list indexes, or None when absent."""
    for part in location.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isascii() and part.isdigit():
            index = int(part)
            node = node[index] if index < len(node) else None
        else:
            return None
        if node is None:
            return None
    return node
