"""The policy example in the README is a valid, complete policy (it cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

from shared.policy import parse_policy

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_policy_example_loads() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README shows a policy example"
    policy = parse_policy(blocks[0])
    assert policy.label == "2026-11-27.1"
    assert policy.source("website-demo") is not None
    assert [r.id for r in policy.rules][-1] == "default"
