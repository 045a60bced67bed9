"""The calibration report breaks leads sales lost down by reason code, source and rule: pure
on hand-made rows, and once through the real query (rows in a rolled-back transaction)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ops.calibration import run_calibration
from ops.calibration.queries import OutcomeRow
from ops.calibration.report import NO_REASON_CODE, calibrate, render_text
from shared.policy import load_policy
from tests.conftest import ROOT

POLICY = load_policy(ROOT / "deploy" / "policy.example.yaml")
SINCE = datetime(2018, 1, 1, tzinfo=UTC)
UNTIL = datetime(2018, 2, 1, tzinfo=UTC)
LEAD = {"lead_id": "x", "received_at": SINCE.isoformat(), "source": "s", "channel": "form"}


def row(
    source: str, rule: str, types: tuple[str, ...], reasons: tuple[str | None, ...]
) -> OutcomeRow:
    return OutcomeRow(
        lead_id=str(uuid.uuid4()),
        source=source,
        status="assigned",
        score=50,
        stage="mql",
        tier="warm",
        lead={**LEAD, "contact": {}},
        rule_id=rule,
        owner_id="rep-anna",
        activity_types=types,
        rejection_notes=(),
        lost_reasons=reasons,
    )


def test_lost_leads_by_reason_source_and_rule() -> None:
    rows = [
        row("website-demo", "mql", ("disqualified",), ("not_icp",)),
        row("chat-widget", "mql", ("rejected", "disqualified"), ("no_budget", "not_icp")),
        row("chat-widget", "smb", ("rejected",), ("no_budget",)),
        row("chat-widget", "smb", ("rejected", "converted"), ("no_budget",)),  # won after all
        row("website-demo", "smb", ("rejected",), (None,)),  # before reason codes
        row("website-demo", "smb", ("contacted",), ()),
    ]
    report = calibrate(rows, POLICY, since=SINCE, until=UNTIL)
    lost = report.as_dict()["lost_by_reason"]
    assert list(lost) == ["not_icp", NO_REASON_CODE, "no_budget"]
    assert lost["not_icp"] == {
        "leads": 2,
        "by_source": {"chat-widget": 1, "website-demo": 1},
        "by_rule": {"mql": 2},
        "by_stage": {"mql": 2},
    }
    assert lost["no_budget"]["by_rule"] == {"smb": 1}
    text_report = render_text(report)
    assert (
        "by reason code" in text_report
        and "by source: chat-widget 1, website-demo 1" in text_report
    )


@pytest.mark.integration
async def test_the_query_reads_the_reason_codes_followup_stored(db: AsyncSession) -> None:
    leads = [str(uuid.uuid4()) for _ in range(3)]
    for i, lead in enumerate(leads):
        at = SINCE + timedelta(hours=i)
        await db.execute(
            text(
                "INSERT INTO router.leads (lead_id, source, received_at, status, owner_id, "
                "team_id, assignment_seq, score, tier, stage, policy_version, lead) VALUES "
                "(CAST(:id AS uuid), 'website-demo', :at, 'assigned', 'rep-anna', 'inbound', 1, "
                "50, 'warm', 'mql', 'v1', CAST(:lead AS jsonb))"
            ),
            {"id": lead, "at": at, "lead": orjson.dumps({**LEAD, "lead_id": lead}).decode()},
        )
        await db.execute(
            text(
                "INSERT INTO router.assignments (lead_id, seq, owner_id, team_id, rule_id, "
                "strategy, reason, assigned_at, due_at, policy_version) VALUES "
                "(CAST(:id AS uuid), 1, 'rep-anna', 'inbound', 'mql', 'least_loaded', 't', :at, "
                ":at, 'v1')"
            ),
            {"id": lead, "at": at},
        )
    for lead, kind, reason in zip(
        leads,
        ("rejected", "disqualified", "contacted"),
        ("bad_data", "bad_data", None),
        strict=True,
    ):
        await db.execute(
            text(
                "INSERT INTO followup.activities (activity_id, lead_id, type, at, actor, reason) "
                "VALUES (:aid, CAST(:id AS uuid), :t, :at, 'rep-anna', :r)"
            ),
            {
                "aid": f"a-{lead}",
                "id": lead,
                "t": kind,
                "at": SINCE + timedelta(days=1),
                "r": reason,
            },
        )
    report = await run_calibration(db, policy=POLICY, since=SINCE, until=UNTIL)
    assert report.as_dict()["lost_by_reason"] == {
        "bad_data": {
            "leads": 2,
            "by_source": {"website-demo": 2},
            "by_rule": {"mql": 2},
            "by_stage": {"mql": 2},
        }
    }
