"""The policy loader: the example loads, and every bad field is reported at its exact path."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.business_hours import END_OF_DAY
from shared.policy import (
    AllCondition,
    FieldCondition,
    NotCondition,
    Policy,
    PolicyError,
    load_policy,
    parse_policy,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
Mutation = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def example_data() -> dict[str, Any]:
    data = _unshare(yaml.safe_load(EXAMPLE.read_text()))
    assert isinstance(data, dict)
    return data


def _unshare(node: Any) -> Any:
    """Fresh containers everywhere: YAML anchors (*office) would share one dict between reps."""
    if isinstance(node, dict):
        return {k: _unshare(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unshare(v) for v in node]
    return node


def broken(data: dict[str, Any], mutate: Mutation) -> str:
    """Apply ``mutate`` to a copy of the example and return the loader's error message."""
    bad = copy.deepcopy(data)
    mutate(bad)
    with pytest.raises(PolicyError) as info:
        parse_policy(yaml.safe_dump(bad, sort_keys=False))
    return str(info.value)


# --- the example ----------------------------------------------------------------------------------


def test_example_loads_with_identity() -> None:
    policy = load_policy(EXAMPLE)
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert policy.content_hash == digest
    assert policy.version_id == digest[:12]
    assert policy.label == policy.version == "2026-11-27.1"
    assert [s.name for s in policy.sources] == [
        "website-demo",
        "chat-widget",
        "typeform-contact",
        "hubspot-forms",
    ]
    assert [t.id for t in policy.teams] == ["enterprise", "smb", "inbound"]
    assert [len(t.reps) for t in policy.teams] == [3, 3, 2]
    assert policy.rules[-1].default and policy.rules[-1].team == "inbound"


def test_example_lookups() -> None:
    policy = load_policy(str(EXAMPLE))
    demo = policy.source("website-demo")
    assert demo is not None and demo.auth.scheme == "none" and demo.rate_limit is not None
    assert demo.auth.allowed_origins == ("http://localhost:8001", "https://www.example.com")
    assert policy.source("nope") is None
    typeform = policy.source("typeform-contact")
    assert typeform is not None and typeform.fields["email"] == "ref:email"
    assert typeform.auth.secret_env == "BATON_SECRET_TYPEFORM"
    found = policy.rep("rep-olivia")
    assert found is not None
    team, rep = found
    assert team.id == "enterprise" and rep.timezone == "Europe/London"
    assert team.manager_email_for(rep) == "eric.lawson@example.com"
    assert policy.rep("rep-ghost") is None
    assert policy.team("smb") is not None and policy.team("apac") is None
    account = policy.account_for_domain("EU.Acme.com")
    assert account is not None and account.owner == "rep-anna"
    assert policy.account_for_domain("notacme.com") is None
    assert policy.account_for_domain(None) is None
    assert policy.sla_for_tier("hot").window_seconds == 300
    assert policy.sla_for_tier("cold").clock == "wall"
    assert [e.after_seconds for e in policy.escalation_levels] == [0, 900, 1800]
    assert policy.fallback.id == "inbound"


def test_example_qualification_and_conditions() -> None:
    q = load_policy(EXAMPLE).qualification
    assert q.framework.questions == ("budget", "authority", "need", "timeline")
    assert 8 <= len(q.rules) <= 12 and len(q.disqualify) == 2
    assert [q.tier_for_score(s) for s in (95, 70, 69, 40, 0, -5)] == [
        "hot",
        "hot",
        "warm",
        "warm",
        "cold",
        "cold",
    ]
    assert [q.stage_for_score(s) for s in (70, 40, 39)] == ["sql", "mql", "lead"]
    mid = next(r for r in q.rules if r.id == "mid-market-size").when
    assert isinstance(mid, AllCondition)
    assert mid.all[0] == FieldCondition(field="company_size", op="gte", value=50)
    demo = next(r for r in q.rules if r.id == "demo-request").when
    assert isinstance(demo, FieldCondition) and demo.value is True


def test_example_reps_have_schedules() -> None:
    policy = load_policy(EXAMPLE)
    found = policy.rep("rep-emma")
    assert found is not None
    schedule = found[1].schedule()
    assert schedule.hours[6] == ((time(0), END_OF_DAY),)
    sunday_night = datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)
    assert all(r.schedule().is_working_time(sunday_night) for r in policy.fallback.reps)
    anna = policy.rep("rep-anna")
    assert anna is not None
    assert anna[1].schedule().hours[0] == ((time(9), time(17, 30)),)
    assert 5 not in anna[1].schedule().hours
    assert anna[1].is_out_of_office(datetime(2026, 12, 28, 10, tzinfo=UTC))
    assert not anna[1].is_out_of_office(datetime(2027, 1, 4, 10, tzinfo=UTC))


def test_policy_is_frozen() -> None:
    policy = load_policy(EXAMPLE)
    with pytest.raises(ValueError, match="frozen"):
        policy.fallback_team = "smb"  # type: ignore[misc]


# --- negative cases: the message names the exact field path ---------------------------------------


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _when(value: Any) -> Mutation:
    return _set(["rules", 0, "when"], value)


CASES: list[tuple[str, Mutation, str]] = [
    (
        "timezone",
        _set(["teams", 0, "reps", 1, "timezone"], "Europe/Pariss"),
        "teams[0].reps[1].timezone: unknown time zone 'Europe/Pariss'",
    ),
    (
        "rule team",
        _set(["rules", 2, "team"], "apac"),
        "rules[2].team: unknown team 'apac'",
    ),
    (
        "last rule default",
        lambda d: d["rules"].pop(),
        "rules: the last rule must have default: true",
    ),
    (
        "inline secret",
        _set(["sources", 1, "auth", "secret"], "whsec_abc"),
        "sources[1].auth.secret: secrets are never inline: use secret_env or secret_file",
    ),
    (
        "missing secret",
        _delete(["sources", 2, "auth", "secret_env"]),
        "sources[2].auth.secret_env: scheme typeform needs secret_env or secret_file",
    ),
    (
        "honeypot",
        _delete(["sources", 0, "auth", "honeypot_field"]),
        "sources[0].auth.honeypot_field: required when scheme is none",
    ),
    (
        "origins",
        _set(["sources", 0, "auth", "allowed_origins"], []),
        "sources[0].auth.allowed_origins: required (non-empty) when scheme is none",
    ),
    (
        "bad origin",
        _set(["sources", 0, "auth", "allowed_origins"], ["https://www.example.com/form"]),
        "sources[0].auth.allowed_origins: 'https://www.example.com/form' is not an origin",
    ),
    (
        "rate limit",
        _delete(["sources", 0, "rate_limit"]),
        "sources[0].rate_limit: required when auth.scheme is none",
    ),
    (
        "scheme",
        _set(["sources", 3, "auth", "scheme"], "hubspot-v2"),
        "sources[3].auth.scheme: Input should be",
    ),
    (
        "mapping target",
        _set(["sources", 0, "fields", "emial"], "email"),
        "sources[0].fields: unknown lead field 'emial'",
    ),
    (
        "source name",
        _set(["sources", 0, "name"], "Website Demo"),
        "sources[0].name: use lower-case letters",
    ),
    (
        "bad regex",
        _set(
            ["qualification", "disqualify", 1, "when"],
            {"field": "title", "op": "matches", "value": "stud(ent"},
        ),
        "qualification.disqualify[1].when.value: invalid regular expression",
    ),
    (
        "in needs list",
        _set(["qualification", "disqualify", 0, "when", "value"], "rival.com"),
        "qualification.disqualify[0].when.value: 'in' needs a non-empty list",
    ),
    (
        "exists needs bool",
        _set(["qualification", "rules", 7, "when", "value"], "yes"),
        "qualification.rules[7].when.value: 'exists' needs true or false",
    ),
    (
        "gte needs number",
        _set(["qualification", "rules", 0, "when", "value"], "500"),
        "qualification.rules[0].when.value: 'gte' needs a number",
    ),
    (
        "unknown op",
        _set(["qualification", "rules", 0, "when", "op"], "greater"),
        "qualification.rules[0].when.op: Input should be",
    ),
    (
        "nested all field",
        _set(
            ["qualification", "rules", 1, "when", "all", 1],
            {"field": "company_sise", "op": "lt", "value": 500},
        ),
        "qualification.rules[1].when.all[1].field: unknown lead field 'company_sise'",
    ),
    (
        "nested not/any",
        _when({"not": {"any": [{"field": "country", "op": "in", "value": ["DE"]}, {"x": 1}]}}),
        "rules[0].when.not.any[1].field: field required",
    ),
    (
        "condition shape",
        _when("company_size > 500"),
        "rules[0].when: a condition is {field, op, value} or one of all/any/not",
    ),
    (
        "empty all",
        _when({"all": []}),
        "rules[0].when.all: needs at least 1 item(s)",
    ),
    (
        "window order",
        _set(["teams", 0, "reps", 0, "working_hours", "mon"], ["17:30", "09:00"]),
        "teams[0].reps[0].working_hours.mon: end must be after start",
    ),
    (
        "time format",
        _set(["teams", 1, "reps", 2, "working_hours", "fri"], ["9am", "17:30"]),
        "teams[1].reps[2].working_hours.fri: '9am' is not a time \"HH:MM\"",
    ),
    (
        "day name",
        _set(["teams", 0, "reps", 0, "working_hours", "mond"], ["09:00", "17:00"]),
        "teams[0].reps[0].working_hours.mond: unknown field",
    ),
    (
        "no hours",
        _set(["teams", 2, "reps", 1, "working_hours"], {}),
        "teams[2].reps[1].working_hours: at least one working day is required",
    ),
    (
        "capacity",
        _set(["teams", 1, "reps", 0, "capacity"], 0),
        "teams[1].reps[0].capacity: Input should be greater than or equal to 1",
    ),
    (
        "territory",
        _set(["teams", 0, "reps", 0, "territories"], ["DE", "deu"]),
        "teams[0].reps[0].territories[1]: String should match pattern",
    ),
    (
        "out of office order",
        _set(
            ["teams", 0, "reps", 0, "out_of_office", 0, "until"],
            datetime(2026, 12, 1, tzinfo=UTC),
        ),
        "teams[0].reps[0].out_of_office[0].until: must be after from",
    ),
    (
        "duplicate rep",
        _set(["teams", 1, "reps", 0, "id"], "rep-anna"),
        "teams[1].reps[0].id: duplicate id 'rep-anna'",
    ),
    (
        "fixed owner missing",
        _set(["rules", 1, "strategy"], "fixed"),
        "rules[1].owner: required when strategy is fixed",
    ),
    (
        "fixed owner elsewhere",
        lambda d: d["rules"][1].update(strategy="fixed", owner="rep-emma"),
        "rules[1].owner: no rep 'rep-emma' in team 'enterprise'",
    ),
    (
        "default not last",
        lambda d: d["rules"].insert(
            0, {"id": "early", "default": True, "team": "smb", "strategy": "least_loaded"}
        ),
        "rules[0].default: only the last rule may be the default",
    ),
    (
        "fallback team",
        _set(["fallback_team"], "support"),
        "fallback_team: unknown team 'support'",
    ),
    (
        "account owner",
        _set(["accounts", 2, "owner"], "rep-ghost"),
        "accounts[2].owner: unknown rep 'rep-ghost'",
    ),
    (
        "sla tier missing",
        _delete(["sla", "tiers", "warm"]),
        "qualification.tiers[1].name: tier 'warm' has no entry in sla.tiers",
    ),
    (
        "sla tier extra",
        _set(["sla", "tiers", "lukewarm"], {"window_seconds": 60, "clock": "wall"}),
        "sla.tiers.lukewarm: not a tier in qualification.tiers",
    ),
    (
        "sla clock",
        _set(["sla", "tiers", "hot", "clock"], "business-hours"),
        "sla.tiers.hot.clock: Input should be 'business' or 'wall'",
    ),
    (
        "tiers cover zero",
        _set(["qualification", "tiers", 2, "min_score"], 10),
        "qualification.tiers: the lowest tier must have min_score 0",
    ),
    (
        "tiers descending",
        _set(["qualification", "tiers", 1, "min_score"], 80),
        "qualification.tiers[1].min_score: must be lower than the one before it",
    ),
    (
        "escalation levels",
        _set(["escalation", 1, "level"], 3),
        "escalation[1].level: expected 2 (levels are 1..n in order)",
    ),
    (
        "escalation action",
        _set(["escalation", 2, "action"], "page_ceo"),
        "escalation[2].action: Input should be",
    ),
    (
        "empty reps",
        _set(["teams", 2, "reps"], []),
        "teams[2].reps: needs at least 1 item(s)",
    ),
    (
        "overlapping windows",
        _set(
            ["teams", 0, "reps", 0, "working_hours", "tue"],
            [["09:00", "12:30"], ["12:00", "17:00"]],
        ),
        "teams[0].reps[0].working_hours.tue: windows overlap",
    ),
    (
        "24:00 only as an end",
        _set(["teams", 0, "reps", 0, "working_hours", "tue"], ["24:00", "24:00"]),
        "teams[0].reps[0].working_hours.tue: '24:00' is not a time",
    ),
    (
        "missing section",
        _delete(["dedupe"]),
        "dedupe: field required",
    ),
    (
        "unknown top-level",
        _set(["routing"], []),
        "routing: unknown field",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_policy_names_the_field(
    example_data: dict[str, Any], mutate: Mutation, expected: str
) -> None:
    message = broken(example_data, mutate)
    assert message.startswith(expected), message


def test_several_errors_are_joined(example_data: dict[str, Any]) -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["teams"][0]["reps"][1]["timezone"] = "Mars/Olympus"
        data["sources"][0]["kind"] = "fax"

    message = broken(example_data, mutate)
    parts = message.split("; ")
    assert "sources[0].kind: Input should be 'form' or 'chat'" in parts
    assert "teams[0].reps[1].timezone: unknown time zone 'Mars/Olympus'" in parts


def test_several_cross_reference_errors_are_joined(example_data: dict[str, Any]) -> None:
    def mutate(data: dict[str, Any]) -> None:
        data["rules"][0]["team"] = "apac"
        data["fallback_team"] = "support"

    bad = copy.deepcopy(example_data)
    mutate(bad)
    with pytest.raises(PolicyError) as info:
        parse_policy(yaml.safe_dump(bad))
    assert info.value.errors == (
        "rules[0].team: unknown team 'apac'",
        "fallback_team: unknown team 'support'",
    )


# --- YAML-level problems ----------------------------------------------------------------------


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(PolicyError, match=r"^line 3, column 1: invalid YAML"):
        parse_policy("version: x\nsources: [\n")


def test_not_a_mapping() -> None:
    with pytest.raises(PolicyError, match="policy: the file must be a YAML mapping"):
        parse_policy("- a\n- b\n")


def test_duplicate_key_is_an_error() -> None:
    with pytest.raises(PolicyError, match="line 2: duplicate key 'version'"):
        parse_policy("version: a\nversion: b\n")


def test_unquoted_time_is_explained() -> None:
    text = EXAMPLE.read_text().replace('mon: ["09:00", "17:30"]', "mon: [09:00, 17:30]", 1)
    with pytest.raises(PolicyError, match=r'working_hours.mon: times are quoted "HH:MM"'):
        parse_policy(text)


def test_norway_stays_a_country_code() -> None:
    text = EXAMPLE.read_text().replace("territories: [GB, IE]", "territories: [GB, NO]")
    found = parse_policy(text).rep("rep-tom")
    assert found is not None and found[1].territories == ("GB", "NO")


def test_missing_file() -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy("/nonexistent/policy.yaml")


def test_hash_changes_with_content() -> None:
    text = EXAMPLE.read_text()
    a, b = parse_policy(text), parse_policy(text + "\n# comment\n")
    assert a.content_hash != b.content_hash and a.label == b.label
    assert isinstance(a, Policy)


def test_not_condition_round_trip() -> None:
    text = EXAMPLE.read_text().replace(
        "when: {field: company_size, op: gte, value: 1}",
        "when: {not: {field: company_size, op: lt, value: 1}}",
    )
    rule = next(r for r in parse_policy(text).rules if r.id == "smb")
    assert isinstance(rule.when, NotCondition)
    assert rule.when.not_ == FieldCondition(field="company_size", op="lt", value=1)


def test_split_windows_parse() -> None:
    text = EXAMPLE.read_text().replace(
        'mon: ["09:00", "17:30"]', 'mon: [["13:00", "17:30"], ["08:00", "12:00"]]', 1
    )
    found = parse_policy(text).rep("rep-anna")
    assert found is not None
    assert found[1].hours()[0] == ((time(8), time(12)), (time(13), time(17, 30)))
