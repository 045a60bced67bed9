"""Notify's endpoint config: a bad file refuses the start with the field named; secrets are
resolved from env or files and never appear in an error."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from services.notify.config import NotifyConfigError, load_config, parse_config, resolve_secrets
from shared.policy import PolicyError
from tests.conftest import ROOT


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


GOOD = """
endpoints:
  - name: crm
    url: https://crm.example.com/hooks
    events: [lead.assigned]
    secrets: [{env: CRM_SECRET}]
  - name: local
    url: http://127.0.0.1:9/x
    events: [lead.escalated]
    teams: [emea]
    secrets: [{env: LOCAL_SECRET}]
    allow_private: true
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(NotifyConfigError) as info:
        parse_config(text)
    return list(info.value.errors)


def test_example_config_loads_with_its_secret() -> None:
    loaded = load_config(
        ROOT / "deploy" / "notify.example.yaml", env={"BATON_NOTIFY_SECRET_LOCAL_SINK": secret()}
    )
    assert [e.name for e in loaded.config.endpoints] == ["local-sink"]
    assert loaded.config.endpoints[0].timeout_seconds == 10
    assert len(loaded.secrets["local-sink"]) == 1


def test_good_config_defaults() -> None:
    config = parse_config(GOOD)
    crm, local = config.endpoints
    assert crm.enabled and crm.timeout_seconds == 10.0 and not crm.allow_private
    assert crm.teams == () and local.teams == ("emea",)


def test_http_outside_the_local_stack_names_the_field() -> None:
    text = GOOD.replace("    allow_private: true\n", "")
    assert errors_of(text) == [
        "endpoints[1].url: https required outside the local stack (allow_private: true allows http)"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("name: crm", "name: CRM!"), "endpoints[0].name: use lower-case letters"),
        (("name: crm", "name: slack"), "endpoints[0].name: 'slack' is reserved"),
        (("name: local", "name: crm"), "endpoints[1].name: duplicate endpoint name 'crm'"),
        (
            ("[lead.assigned]", "[lead.sold]"),
            "endpoints[0].events[0]: unknown event type 'lead.sold'",
        ),
        (
            ("[lead.assigned]", "[lead.parked, lead.nurtured, lead.sold]"),
            "endpoints[0].events[2]: unknown event type 'lead.sold'",
        ),
        (("[lead.assigned]", "[]"), "endpoints[0].events:"),
        (("{env: CRM_SECRET}", "{value: whsec_abc}"), "endpoints[0].secrets[0].value: secrets"),
        (("{env: CRM_SECRET}", "{env: A, file: /x}"), "endpoints[0].secrets[0]: give exactly"),
        (("https://crm.example.com/hooks", "ftp://x/"), "endpoints[0].url: an absolute http(s)"),
        (("https://crm.example.com", "https://u:p@crm.example.com"), "endpoints[0].url: no cred"),
        (("    allow_private: true", "    timeout: 3"), "endpoints[1].timeout: unknown field"),
    ],
)
def test_bad_fields_are_named(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in GOOD
    errors = errors_of(GOOD.replace(old, new, 1))
    assert any(e.startswith(expected) for e in errors), errors


def test_missing_and_bad_secrets_are_named_never_shown(tmp_path: Path) -> None:
    config = parse_config(GOOD)
    with pytest.raises(NotifyConfigError) as info:
        resolve_secrets(config, env={"CRM_SECRET": "not-a-whsec-secret"})
    errs = info.value.errors
    assert errs[0] == (
        "endpoints[0].secrets[0].env (CRM_SECRET): secret #1 for endpoint 'crm' is not a "
        "whsec_<base64> secret (no whsec_ prefix)"
    )
    assert (
        errs[1]
        == "endpoints[1].secrets[0].env (LOCAL_SECRET): no secret configured for endpoint 'local'"
    )
    assert "not-a-whsec-secret" not in str(info.value)


def test_a_secret_that_does_not_decode_or_an_unreadable_file_is_named(tmp_path: Path) -> None:
    text = GOOD.replace("{env: CRM_SECRET}", f"{{file: {tmp_path / 'nope'}}}")
    with pytest.raises(NotifyConfigError) as info:
        resolve_secrets(parse_config(text), env={"LOCAL_SECRET": "whsec_***"})
    assert list(info.value.errors) == [
        f"endpoints[0].secrets[0].file ({tmp_path / 'nope'}): cannot read the secret file for "
        "endpoint 'crm': FileNotFoundError",
        "endpoints[1].secrets[0].env (LOCAL_SECRET): secret #1 for endpoint 'local' is not a "
        "whsec_<base64> secret (webhook secret is not valid base64)",
    ]


def test_secrets_from_a_file_several_for_rotation(tmp_path: Path) -> None:
    old, new = secret(), secret()
    path = tmp_path / "s"
    path.write_text(f"{old}\n{new}\n")
    text = GOOD.replace("{env: CRM_SECRET}", f"{{file: {path}}}")
    got = resolve_secrets(parse_config(text), env={"LOCAL_SECRET": secret()})
    assert got["crm"] == (old, new)


def test_an_unreadable_file_and_bad_yaml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(NotifyConfigError, match="cannot read notify config"):
        load_config(tmp_path / "missing.yaml")
    assert errors_of("endpoints: [")[0].startswith("invalid YAML")
    assert errors_of("- a\n") == ["notify config: the file must be a YAML mapping"]
    assert issubclass(NotifyConfigError, PolicyError)  # `baton serve` refuses to start on it


def test_yaml_12_booleans_and_duplicate_keys() -> None:
    assert parse_config(GOOD.replace("name: crm", "name: off")).endpoints[0].name == "off"
    dup = GOOD.replace(
        "    events: [lead.assigned]\n", "    events: [lead.assigned]\n    events: []\n"
    )
    assert errors_of(dup)[0].endswith("duplicate key 'events'")
