"""Policy accounts match a lead's domain and its parents down to the registrable domain
(tldextract's bundled public-suffix snapshot), never a public suffix (unit: no network)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from shared.policy import Policy, parse_policy
from tests.conftest import ROOT


def _policy(accounts: list[dict[str, str]]) -> Policy:
    data: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "policy.example.yaml").read_text())
    data["accounts"] = accounts
    return parse_policy(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("acme.com", "acme.com"),
        ("eu.acme.com", "acme.com"),
        ("EU.Acme.com.", "acme.com"),
        ("acme.co.uk", "acme.co.uk"),
        ("sales.eu.acme.co.uk", "acme.co.uk"),
        ("globex.co.uk", None),  # listed "co.uk" is a public suffix: nobody's account
        ("notacme.com", None),
        ("rival.example", "rival.example"),  # no known suffix: matched as before
    ],
)
def test_account_for_domain_walks_down_to_the_registrable_domain(
    domain: str, expected: str | None
) -> None:
    owner = "rep-anna"
    policy = _policy(
        [
            {"domain": d, "name": d, "owner": owner}
            for d in ("acme.com", "acme.co.uk", "co.uk", "rival.example")
        ]
    )
    found = policy.account_for_domain(domain)
    assert (found.domain if found else None) == expected
