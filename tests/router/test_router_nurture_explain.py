"""`baton explain` tells the nurture track: nurtured, a touch that kept it there, the handoff on
a touch and a re-engagement (pure: the timeline from stored rows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ops.explain.queries import LeadAudit
from ops.explain.timeline import render

AT = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _decision(kind: str, hours: int, **trace: Any) -> dict[str, Any]:
    return {"kind": kind, "policy_version": "abc123", "at": AT + timedelta(hours=hours),
            "trace": {"explanation": [f"line of {kind}"], **trace}}  # fmt: skip


def test_the_timeline_tells_nurture_touches_the_handoff_and_reengagement() -> None:
    lead = {"lead_id": "L1", "source": "website-demo", "received_at": AT, "status": "assigned",
            "owner_id": "rep-a", "team_id": "direct", "assignment_seq": 2, "score": 75,
            "tier": "hot", "stage": "sql", "policy_version": "abc123", "closed_at": None,
            "channel": "form"}  # fmt: skip
    reengage = (AT + timedelta(days=30)).isoformat()
    audit = LeadAudit(
        lead=lead,
        decisions=[
            _decision(
                "nurtured",
                0,
                rule_id="cold",
                score=25,
                tier="cold",
                stage="lead",
                reengage_at=reengage,
            ),
            _decision(
                "nurtured",
                1,
                rule_id="cold",
                score=35,
                tier="cold",
                stage="lead",
                reengage_at=reengage,
                touch_lead_id="T1",
            ),
            _decision(
                "handoff",
                2,
                seq=1,
                owner_id="rep-a",
                team_id="direct",
                rule_id="sql",
                strategy="round_robin",
                score=75,
                tier="hot",
                reason="handoff: score 75 (sql) reached sales on a new touch (rule sql)",
            ),
            _decision(
                "reengaged",
                3,
                seq=2,
                owner_id="rep-a",
                team_id="direct",
                rule_id="default",
                strategy="previous_owner",
                score=75,
                tier="hot",
            ),
            _decision("reengage_failed", 4, reason="no eligible rep"),
        ],
        assignments=[],
        merged_touches=[{"lead_id": "T1", "source": "chat-widget", "received_at": AT}],
        clock=None,
        escalations=[],
        activities=[],
    )
    text = render(audit)
    assert "Nurtured by rule cold: score 25, tier cold, stage lead, below the handoff" in text
    assert f"no owner, no SLA. Re-engage on {reengage}" in text
    assert "a new touch (T1) re-scored it: score 35" in text
    assert (
        "Handed to sales (handoff: score 75 (sql) reached sales on a new touch (rule sql))" in text
    )
    assert "assigned to rep-a in team direct by rule sql (round_robin); score 75, tier hot" in text
    assert "Re-engaged: routed afresh: assigned to rep-a in team direct by rule default" in text
    assert "Re-engagement found nobody to take the lead (no eligible rep)" in text
    assert "Decision " not in text  # every kind has its words
