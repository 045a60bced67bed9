"""The router's derived condition field `account_owner`: testable, never mappable."""

from __future__ import annotations

import pytest
import yaml

from shared.policy import PolicyError, is_canonical_path, parse_policy
from tests.router.conftest import base_policy


def test_account_owner_is_a_condition_field_only() -> None:
    assert is_canonical_path("account_owner", derived=True)
    assert not is_canonical_path("account_owner")
    data = base_policy("fields")
    assert parse_policy(yaml.safe_dump(data)).rules[0].id == "accounts"


def test_a_source_cannot_fill_account_owner() -> None:
    data = base_policy("fields")
    data["sources"][0]["fields"]["account_owner"] = "owner"
    with pytest.raises(PolicyError) as info:
        parse_policy(yaml.safe_dump(data))
    assert "sources[0].fields: unknown lead field 'account_owner'" in str(info.value)
