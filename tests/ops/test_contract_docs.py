"""The committed contract docs are exactly what the code generates (`baton docs` refreshes them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from ops.contract_docs import asyncapi, render
from shared.events import EVENT_TYPES

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "asyncapi"


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


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is required to validate the AsyncAPI document"
    assert (TOOLS / "node_modules").is_dir(), "`make tools` installs the AsyncAPI parser"
    return subprocess.run(
        [node, str(TOOLS / "validate.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_asyncapi_document_is_valid_for_the_reference_parser(tmp_path: Path) -> None:
    path = tmp_path / "asyncapi.yaml"
    path.write_text(yaml.safe_dump(asyncapi(), sort_keys=False))
    result = _validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_asyncapi_check_rejects_a_broken_document(tmp_path: Path) -> None:
    doc = asyncapi()
    doc["channels"]["leads_received"]["messages"]["LeadReceived"]["$ref"] = "#/nowhere"
    path = tmp_path / "asyncapi.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert _validate(path).returncode != 0
