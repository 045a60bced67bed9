"""`baton explain`: each kind of decision the router stores, plus follow-up, in plain words."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ops.explain import explain_lead
from shared.errors import LeadNotFound
from shared.events import Lead
from shared.settings import Settings
from tests.router.whatif.conftest import Router
from tests.router.whatif.synthetic import ALWAYS, policy_data, to_policy

pytestmark = pytest.mark.integration

T0 = datetime(2020, 3, 2, 10, 0, tzinfo=UTC)


def _duo_policy(tag: str) -> dict[str, Any]:
    """Two reps with room for one lead each, both the rule's team and the fallback."""
    data = policy_data(tag)
    rep = copy.deepcopy(data["teams"][2]["reps"][0])
    reps = []
    for name in ("x", "y"):
        one = copy.deepcopy(rep)
        one.update(id=f"{name}-{tag}", name=f"Rep {name.upper()}", capacity=1, weight=1)
        one["working_hours"] = copy.deepcopy(ALWAYS)
        reps.append(one)
    data["teams"] = [
        {"id": "duo", "name": "Duo", "manager": {"name": "M", "email": "m@example.com"},
         "reps": reps},
    ]  # fmt: skip
    data["rules"] = [{"id": "default", "default": True, "team": "duo", "strategy": "round_robin"}]
    data["fallback_team"] = "duo"
    data["accounts"] = []
    return data


def _lead(tag: str, n: int, at: datetime, **contact: Any) -> Lead:
    base: dict[str, Any] = {
        "email": f"jane.{n}.{tag}@corp-{tag}.com",
        "phone": "+4915112345678" if n == 1 else None,
        "first_name": "Jane",
        "last_name": "Secret",
        "title": "VP Sales",
        "company_domain": f"corp-{tag}.com",
        "email_kind": "business",
    }
    base.update(contact)
    return Lead.model_validate(
        {
            "lead_id": str(uuid.uuid4()),
            "received_at": at,
            "source": "web",
            "channel": "form",
            "contact": base,
            "extra": {"b32": "y", "b8": "y"},
        }
    )


async def _followup(db: AsyncSession, lead_id: str, owner: str, tag: str) -> None:
    await db.execute(
        text(
            "INSERT INTO followup.clocks (lead_id, assignment_seq, owner, team_id, tier, "
            "window_seconds, started_at, due_at, status, chain, contacted_at, closed_at) VALUES "
            "(CAST(:l AS uuid), 2, CAST(:o AS jsonb), 'duo', 'warm', 14400, :s, :d, 'contacted', "
            "'[]'::jsonb, :c, :c)"
        ),
        {
            "l": lead_id,
            "o": f'{{"id": "{owner}", "name": "Rep Y", "email": "{owner}@example.com"}}',
            "s": T0 + timedelta(hours=5),
            "d": T0 + timedelta(hours=9),
            "c": T0 + timedelta(hours=6),
        },
    )
    await db.execute(
        text(
            "INSERT INTO followup.escalations (lead_id, assignment_seq, level, action, team_id, "
            "due_at, fired_at, seconds_late) VALUES (CAST(:l AS uuid), 1, 1, 'remind_owner', "
            "'duo', :d, :f, 120)"
        ),
        {"l": lead_id, "d": T0 + timedelta(hours=4), "f": T0 + timedelta(hours=4, minutes=2)},
    )
    for i, (kind, hours, note) in enumerate(
        [
            ("contacted", 6, None),
            ("rejected", 7, "wrong person, try jane@other.example or +49 151 1234 5678"),
            ("converted", 30, "signed"),
        ]
    ):
        await db.execute(
            text(
                "INSERT INTO followup.activities (activity_id, lead_id, type, at, actor, note) "
                "VALUES (:id, CAST(:l AS uuid), :t, :at, :a, :n)"
            ),
            {
                "id": f"{tag}-{i}",
                "l": lead_id,
                "t": kind,
                "at": T0 + timedelta(hours=hours),
                "a": owner,
                "n": note,
            },
        )


async def test_explain_tells_every_kind_of_decision(
    router: Router, db: AsyncSession, migrated: Settings
) -> None:
    tag = "ex" + uuid.uuid4().hex[:6]
    policy = to_policy(_duo_policy(tag))
    service = router.service(policy)
    x, y = f"x-{tag}", f"y-{tag}"
    first = _lead(tag, 1, T0)
    second = _lead(tag, 2, T0 + timedelta(minutes=1))
    assert await service.on_received(db, lead=first, now=T0) == "assigned"
    assert await service.on_received(db, lead=second, now=second.received_at) == "assigned"
    # both full: reassigning the first lead finds nobody, a third lead stays unassigned
    assert not await service.reassign(
        db, lead_id=first.lead_id, expected_seq=1, reason="SLA escalation level 2",
        now=T0 + timedelta(hours=4),
    )  # fmt: skip
    third = _lead(tag, 3, T0 + timedelta(hours=4, minutes=30))
    assert await service.on_received(db, lead=third, now=third.received_at) == "unassigned"
    # the second lead closes, so its rep can take the first one over
    await service.close(db, lead_id=second.lead_id, status="converted", at=T0 + timedelta(hours=4))
    assert await service.reassign(
        db, lead_id=first.lead_id, expected_seq=1, reason="SLA escalation level 2",
        now=T0 + timedelta(hours=5),
    )  # fmt: skip
    again = _lead(tag, 1, T0 + timedelta(hours=5, minutes=30))  # same email: merged
    assert await service.on_received(db, lead=again, now=again.received_at) == "merged"
    student = _lead(tag, 4, T0 + timedelta(hours=6), title="Student")
    assert await service.on_received(db, lead=student, now=student.received_at) == "disqualified"
    owner_of_first = (
        await db.execute(
            text("SELECT owner_id FROM router.leads WHERE lead_id = CAST(:l AS uuid)"),
            {"l": first.lead_id},
        )
    ).scalar_one()
    await _followup(db, first.lead_id, owner_of_first, tag)

    out = await explain_lead(db, first.lead_id, policy=policy)
    lines = out.splitlines()
    assert lines[0].startswith(f"Lead {first.lead_id}: assigned, owner Rep ")
    assert "score 40, tier warm, stage mql" in lines[0]
    body = "\n".join(lines[2:])
    first_owner = x if owner_of_first == y else y
    order = [
        "Received from source web (form).",
        f"Assigned to Rep {first_owner[0].upper()} ({first_owner}) in team duo by rule default "
        "(round_robin); score 40, tier warm.",
        f"Reassignment away from Rep {first_owner[0].upper()} ({first_owner}) failed "
        "(SLA escalation level 2)",
        "Escalation level 1 (remind owner) on assignment 1, team duo: deadline "
        "2020-03-02 14:00:00 UTC missed by 2 min.",
        f"Reassigned (assignment 2) from Rep {first_owner[0].upper()} ({first_owner}) to "
        f"Rep {owner_of_first[0].upper()} ({owner_of_first}) in team duo: SLA escalation level 2.",
        "SLA clock for assignment 2",
        f"touch {again.lead_id} was merged into this lead.",
        "First contact 60 min after assignment, within the SLA.",
        "contacted the lead.",
        'rejected the lead. Note: "wrong person, try [email] or [phone]".',
        'converted the lead. Note: "signed".',
    ]
    positions = [body.find(part) for part in order]
    assert all(p >= 0 for p in positions), [
        o for o, p in zip(order, positions, strict=True) if p < 0
    ]
    assert positions == sorted(positions)
    assert "| Score 40 (fit 0, intent 40): tier warm, stage mql" in body
    assert "+32 b32 (intent)" in body
    for personal in ("jane", "Secret", "4915112345678", "+49"):
        assert personal not in out

    merged = await explain_lead(db, again.lead_id, policy=policy)
    assert f"Merged into open lead {first.lead_id} (owner Rep" in merged
    dq = await explain_lead(db, student.lead_id, policy=policy)
    assert "Disqualified by rule student (student); score 40, tier warm. Not handed to sales." in dq
    assert "| Disqualified by student (student): title contains student" in dq
    unassigned = await explain_lead(db, third.lead_id, policy=policy)
    assert "Left unassigned: rule default found no eligible rep" in unassigned
    assert f"Skipped {x}: at capacity (1/1 open leads)" in unassigned
    closed = await explain_lead(db, second.lead_id, policy=None)  # no policy: ids only
    assert "Closed for routing as converted." in closed
    assert f"Assigned to {x if first_owner == y else y} in team duo" in closed
    with pytest.raises(LeadNotFound):
        await explain_lead(db, str(uuid.uuid4()), policy=policy)
