"""Read-only SQL for `baton explain`: everything stored about one lead, in the router's and
followup's schemas.

Only SELECTs. The followup schema (clocks, escalations, activities) is read here, beside the
router's, because explain is an operator tool run from the CLI, never code a running service
calls: services still learn about each other only from events. No contact data is selected
(no email, phone or names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class LeadAudit:
    """Everything stored about one lead, without contact data (no email, phone or names)."""

    lead: dict[str, Any]
    decisions: list[dict[str, Any]]
    assignments: list[dict[str, Any]]
    merged_touches: list[dict[str, Any]]
    clock: dict[str, Any] | None
    escalations: list[dict[str, Any]]
    activities: list[dict[str, Any]]


async def _all(session: AsyncSession, sql: str, **params: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in (await session.execute(text(sql), params)).mappings().all()]


async def load_audit(session: AsyncSession, lead_id: str) -> LeadAudit | None:
    rows = await _all(
        session,
        "SELECT lead_id::text AS lead_id, source, received_at, status, owner_id, team_id, "
        "assignment_seq, merged_into::text AS merged_into, score, tier, stage, policy_version, "
        "closed_at, lead->>'channel' AS channel FROM router.leads "
        "WHERE lead_id = CAST(:id AS uuid)",
        id=lead_id,
    )
    if not rows:
        return None
    decisions = await _all(
        session,
        "SELECT kind, policy_version, at, trace FROM router.decisions "
        "WHERE lead_id = CAST(:id AS uuid) ORDER BY id",
        id=lead_id,
    )
    assignments = await _all(
        session,
        "SELECT seq, owner_id, team_id, rule_id, strategy, reason, previous_owner_id, "
        "assigned_at, due_at, policy_version FROM router.assignments "
        "WHERE lead_id = CAST(:id AS uuid) ORDER BY seq",
        id=lead_id,
    )
    touches = await _all(
        session,
        "SELECT lead_id::text AS lead_id, source, received_at FROM router.leads "
        "WHERE merged_into = CAST(:id AS uuid) ORDER BY received_at, lead_id",
        id=lead_id,
    )
    clocks = await _all(
        session,
        "SELECT assignment_seq, owner->>'id' AS owner_id, owner->>'name' AS owner_name, "
        "team_id, tier, window_seconds, started_at, due_at, status, contacted_at, closed_at "
        "FROM followup.clocks WHERE lead_id = CAST(:id AS uuid)",
        id=lead_id,
    )
    escalations = await _all(
        session,
        "SELECT assignment_seq, level, action, team_id, due_at, fired_at, seconds_late "
        "FROM followup.escalations WHERE lead_id = CAST(:id AS uuid) "
        "ORDER BY fired_at, assignment_seq, level",
        id=lead_id,
    )
    activities = await _all(
        session,
        "SELECT type, at, actor, note, reengage_at, other_owner FROM followup.activities "
        "WHERE lead_id = CAST(:id AS uuid) ORDER BY at, recorded_at, activity_id",
        id=lead_id,
    )
    return LeadAudit(
        lead=rows[0],
        decisions=decisions,
        assignments=assignments,
        merged_touches=touches,
        clock=clocks[0] if clocks else None,
        escalations=escalations,
        activities=activities,
    )
