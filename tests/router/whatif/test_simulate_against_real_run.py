"""The simulator against a real run: a generated year of leads routed by RouterService into
PostgreSQL, then replayed through the same policy, must give exactly the same owners."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from services.router.whatif.run import run_simulation, simulate_policy_yaml
from shared.db import read_only_session
from shared.errors import DomainError
from tests.router.whatif.conftest import Router
from tests.router.whatif.synthetic import generate, policy_data, to_policy

pytestmark = pytest.mark.integration

SINCE = datetime(2021, 1, 1, tzinfo=UTC)
UNTIL = datetime(2022, 1, 1, tzinfo=UTC)
TABLES = ("leads", "assignments", "decisions", "rep_state", "accounts", "outbox")


async def _counts(router: Router) -> dict[str, int]:
    async with router.sessions() as session:
        return {
            t: int(await session.scalar(text(f"SELECT count(*) FROM router.{t}")) or 0)
            for t in TABLES
        }


async def test_same_policy_replays_the_real_run_exactly_and_writes_nothing(router: Router) -> None:
    tag = "y21" + router.settings.topics.leads_received.split(".")[0][1:6]
    data = policy_data(tag)
    policy = to_policy(data)
    leads = generate(700, tag=tag, seed=21)
    real = await router.replay_for_real(router.service(policy), leads)
    assert real["merged"] > 0 and real["disqualified"] > 0 and real["assigned"] > 500

    async with router.sessions() as session:
        actual_reps: Counter[str] = Counter(
            dict(
                (
                    await session.execute(
                        text(
                            "SELECT a.owner_id, count(*) FROM router.assignments a "
                            "JOIN router.leads l USING (lead_id) WHERE a.seq = 1 "
                            "AND l.received_at >= :s AND l.received_at < :u GROUP BY 1"
                        ),
                        {"s": SINCE, "u": UNTIL},
                    )
                ).all()
            )
        )
    before = await _counts(router)
    async with read_only_session(router.settings.database_url) as session:
        report = await run_simulation(session, policy=policy, since=SINCE, until=UNTIL)
    assert await _counts(router) == before  # nothing written, not even rep state

    assert report.leads == len(leads)
    for outcome, pair in report.outcomes.items():
        assert pair.actual == pair.simulated == real.get(outcome, 0), outcome
    for team, pair in report.teams.items():
        assert pair.actual == pair.simulated, team
    reps = {rep_id: load.leads for rep_id, load in report.reps.items() if load.leads.actual}
    assert {k: v.actual for k, v in reps.items()} == dict(actual_reps)
    assert all(v.actual == v.simulated for v in reps.values())
    assert report.owner_changes == ()
    # every path of the router got traffic, and the replay saw it the same way
    assert report.capacity_overflows.actual == report.capacity_overflows.simulated > 0
    assert report.fallback.actual == report.fallback.simulated > 0
    assert report.teams["ent"].actual > 0 and report.teams["smb"].actual > 0
    assert report.tiers == {k: v for k, v in report.tiers.items() if v.actual == v.simulated}
    assert set(report.stages) == {"lead", "mql", "sql"}
    assert report.reps[f"ent-b-{tag}"].business_hours == pytest.approx(52 * 5 * 8, rel=0.02)

    # a proposed policy: more enterprise capacity, SMB round robin; deterministic, and it moves
    def change(d: dict[str, object]) -> None:
        teams = d["teams"]
        assert isinstance(teams, list)
        for rep in teams[0]["reps"]:
            rep["capacity"] = 50
        rules = d["rules"]
        assert isinstance(rules, list)
        rules[2]["strategy"] = "round_robin"

    proposed = dict(data)
    change(proposed)
    new_policy = to_policy(proposed)
    async with read_only_session(router.settings.database_url) as session:
        first = await run_simulation(session, policy=new_policy, since=SINCE, until=UNTIL)
        second = await run_simulation(session, policy=new_policy, since=SINCE, until=UNTIL)
    assert first.as_dict() == second.as_dict()
    assert first.owner_changes
    assert first.capacity_overflows.simulated < report.capacity_overflows.simulated
    assert first.fallback.simulated < report.fallback.simulated
    assert sum(p.simulated for p in first.teams.values()) == sum(
        p.actual for p in first.teams.values()
    )
    changed = {c.lead_id for c in first.owner_changes}
    assert all(c.actual_owner != c.simulated_owner for c in first.owner_changes)
    assert len(changed) == len(first.owner_changes)


async def test_admin_function_validates_the_policy_and_returns_json(router: Router) -> None:
    import yaml

    tag = "adm" + router.settings.topics.leads_received.split(".")[0][1:6]
    body = yaml.safe_dump(policy_data(tag)).encode()
    async with read_only_session(router.settings.database_url) as session:
        out = await simulate_policy_yaml(
            session, policy_yaml=body, since=datetime(1999, 1, 1, tzinfo=UTC), until=SINCE
        )
        assert out["leads"] == 0 and out["owner_changes"] == []
        assert set(out["teams"]) == set()
        with pytest.raises(DomainError) as err:
            await simulate_policy_yaml(
                session, policy_yaml=body.replace(b"fallback_team: desk", b"fallback_team: x"),
                since=SINCE, until=UNTIL,
            )  # fmt: skip
    assert err.value.status == 422 and "fallback_team" in err.value.detail
