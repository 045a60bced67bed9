"""Policy fields for notify's people channels: Slack ids, channel choices, acknowledgements.

Every bad field is reported at its exact path, like the rest of the loader."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.policy import PolicyError, load_policy, parse_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def example_data() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(data, dict)
    return data


def _load(data: dict[str, Any], mutate: Mutation) -> Any:
    changed = copy.deepcopy(data)
    mutate(changed)
    return parse_policy(yaml.safe_dump(changed, sort_keys=False))


def _error(data: dict[str, Any], mutate: Mutation) -> str:
    with pytest.raises(PolicyError) as info:
        _load(data, mutate)
    return str(info.value)


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def test_example_people_fields() -> None:
    policy = load_policy(EXAMPLE)
    enterprise = policy.team("enterprise")
    inbound = policy.team("inbound")
    assert enterprise is not None and inbound is not None
    assert enterprise.slack_channel == "#enterprise-leads"
    assert enterprise.manager.slack_user_id == "U07KVOGEL"
    assert enterprise.notify.assignment == ("slack", "team_channel")
    assert enterprise.notify.for_level(2) == ("slack", "email")
    assert inbound.notify.for_level(1) == ("slack",)
    assert inbound.notify.for_level(2) == ("slack", "email")
    assert inbound.notify.for_level(3) is None
    anna = policy.rep("rep-anna")
    assert anna is not None and anna[1].slack_user_id == "U07ASCHMIDT"
    tom = policy.rep("rep-tom")
    assert tom is not None and tom[1].slack_user_id is None and tom[1].notify.assignment is None
    ack = policy.source("website-demo")
    assert ack is not None and ack.acknowledge is not None
    assert ack.acknowledge.from_ == "Example Sales <sales@example.com>"
    assert ack.acknowledge.template == "acknowledgement"
    assert ack.acknowledge.delay_seconds == 10 and ack.acknowledge.reply_to_owner
    chat = policy.source("chat-widget")
    assert chat is not None and chat.acknowledge is None
    assert [e.channels for e in policy.escalation_levels] == [("email",), ("email",), None]


def test_good_variants_load(example_data: dict[str, Any]) -> None:
    def variants(data: dict[str, Any]) -> None:
        data["teams"][1]["slack_channel"] = "C0SMB1234"
        data["teams"][1]["notify"] = {"assignment": ["team_channel"], "escalation": ["email"]}
        data["teams"][1]["reps"][0]["slack_user_id"] = "W012ENTERPRISE"
        data["sources"][1]["acknowledge"] = {"from": "sales@example.com", "subject": "Thanks"}

    policy = _load(example_data, variants)
    smb = policy.team("smb")
    assert smb.slack_channel == "C0SMB1234" and smb.notify.for_level(1) == ("email",)
    assert smb.reps[0].slack_user_id == "W012ENTERPRISE"
    ack = policy.source("chat-widget").acknowledge
    assert ack.template == "acknowledgement" and ack.delay_seconds == 0


CASES: list[tuple[str, Mutation, str]] = [
    (
        "rep slack id",
        _set(["teams", 0, "reps", 0, "slack_user_id"], "anna"),
        "teams[0].reps[0].slack_user_id: 'anna' is not a Slack member id like U0123ABCD",
    ),
    (
        "manager slack id",
        _set(["teams", 0, "manager", "slack_user_id"], "C0123ABCD"),
        "teams[0].manager.slack_user_id: 'C0123ABCD' is not a Slack member id like U0123ABCD",
    ),
    (
        "team channel",
        _set(["teams", 0, "slack_channel"], "enterprise leads"),
        "teams[0].slack_channel: 'enterprise leads' is not a Slack channel id like C0123ABCD"
        " or a name like #leads",
    ),
    (
        "unknown channel",
        _set(["teams", 0, "notify", "assignment"], ["slack", "sms"]),
        "teams[0].notify.assignment[1]: Input should be 'slack', 'email' or 'team_channel'",
    ),
    (
        "channel twice",
        _set(["teams", 0, "notify", "assignment"], ["email", "email"]),
        "teams[0].notify.assignment: 'email' is listed twice",
    ),
    (
        "no channel",
        _set(["teams", 0, "notify", "assignment"], []),
        "teams[0].notify.assignment: needs at least 1 item(s)",
    ),
    (
        "unknown notify key",
        _set(["teams", 0, "notify", "assignments"], ["email"]),
        "teams[0].notify.assignments: unknown field",
    ),
    (
        "team channel without slack_channel",
        _set(["teams", 1, "notify"], {"assignment": ["team_channel"]}),
        "teams[1].notify: team_channel needs the team's slack_channel",
    ),
    (
        "rep team channel without slack_channel",
        _set(["teams", 1, "reps", 2, "notify"], {"escalation": {"1": ["team_channel"]}}),
        "teams[1].reps[2].notify: team_channel needs the team's slack_channel",
    ),
    (
        "escalation level that does not exist",
        _set(["teams", 2, "notify", "escalation"], {1: ["slack"], 7: ["email"]}),
        "teams[2].notify.escalation[7]: no escalation level 7",
    ),
    (
        "escalation level that reassigns",
        _set(["teams", 2, "notify", "escalation"], {3: ["email"]}),
        "teams[2].notify.escalation[3]: reassign sends no message of its own"
        " (the new assignment tells both owners)",
    ),
    (
        "escalation channels not a list",
        _set(["teams", 2, "notify", "escalation"], "slack"),
        "teams[2].notify.escalation: a list of channels for every level, or {level: [channels]}",
    ),
    (
        "escalation per level, bad channel",
        _set(["teams", 2, "notify", "escalation"], {1: ["pager"]}),
        "teams[2].notify.escalation[1][0]: Input should be 'slack', 'email' or 'team_channel'",
    ),
    (
        "chain channels on reassign",
        _set(["escalation", 2, "channels"], ["email"]),
        "escalation[2].channels: reassign sends no message of its own"
        " (the new assignment tells both owners)",
    ),
    (
        "chain channels unknown",
        _set(["escalation", 0, "channels"], ["fax"]),
        "escalation[0].channels[0]: Input should be 'slack', 'email' or 'team_channel'",
    ),
    (
        "ack sender",
        _set(["sources", 0, "acknowledge", "from"], "Example Sales"),
        "sources[0].acknowledge.from: 'Example Sales' is not an address like sales@example.com"
        " or Example <sales@example.com>",
    ),
    (
        "ack subject template",
        _set(["sources", 0, "acknowledge", "subject"], "Thanks {{ first_name"),
        "sources[0].acknowledge.subject: invalid template: unexpected end of template,"
        " expected 'end of print statement'.",
    ),
    (
        "ack subject two lines",
        _set(["sources", 0, "acknowledge", "subject"], "Thanks\nBcc: x@evil.com"),
        "sources[0].acknowledge.subject: one line only",
    ),
    (
        "ack template name",
        _set(["sources", 0, "acknowledge", "template"], "../etc/passwd"),
        "sources[0].acknowledge.template: use lower-case letters, digits, '-' and '_' only",
    ),
    (
        "ack delay",
        _set(["sources", 0, "acknowledge", "delay_seconds"], -1),
        "sources[0].acknowledge.delay_seconds: Input should be greater than or equal to 0",
    ),
    (
        "ack missing subject",
        _set(["sources", 0, "acknowledge"], {"from": "sales@example.com"}),
        "sources[0].acknowledge.subject: field required",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_field_is_named(example_data: dict[str, Any], mutate: Mutation, expected: str) -> None:
    assert _error(example_data, mutate) == expected
