"""Read-only SQL for the operator tools: history to replay, one lead's audit, outcomes.

Only SELECTs. The router schema is this service's own; the followup schema (clocks,
escalations, activities) is read here because ``baton explain`` and the calibration report are
operator tools run from the CLI, never code a running service calls: services still learn about
each other only from events. Personal data is not selected except the email and phone the
simulator needs (in memory only) to replay the open-lead dedupe exactly as the router does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CAPACITY_MARK = "at capacity ("  # how choose_owner words a rep skipped for load


@dataclass(frozen=True, slots=True)
class HistoricLead:
    """One stored lead and what really happened to it first (assignment seq 1)."""

    lead_id: str
    received_at: datetime
    closed_at: datetime | None
    status: str
    email: str | None
    phone: str | None
    lead: dict[str, Any]
    score: int | None
    tier: str | None
    stage: str | None
    owner_id: str | None
    team_id: str | None
    rule_id: str | None
    fallback_used: bool
    capacity_skip: bool
    reassigned: bool

    @property
    def outcome(self) -> str:
        """assigned | merged | disqualified | unassigned (closed leads were assigned first)."""
        if self.owner_id is None and self.status in ("merged", "disqualified", "unassigned"):
            return self.status
        return "assigned"


@dataclass(frozen=True, slots=True)
class OpenLead:
    """A lead assigned before the period and still open at its start (load, dedupe)."""

    lead_id: str
    received_at: datetime
    email: str | None
    phone: str | None
    owner_id: str
    team_id: str | None
    open_until: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class History:
    since: datetime
    until: datetime
    leads: tuple[HistoricLead, ...]  # received_at, lead_id order
    open_at_start: tuple[OpenLead, ...]
    accounts: dict[str, str]  # learned accounts (domain -> owner) known before the period


_LEADS = text(
    """
    SELECT l.lead_id::text AS lead_id, l.received_at, l.closed_at, l.status, l.email, l.phone,
           l.lead, l.score, l.tier, l.stage, l.assignment_seq,
           a.owner_id, a.team_id, a.rule_id, a.reason,
           coalesce(position(:mark in d.trace::text) > 0, false) AS capacity_skip
    FROM router.leads l
    LEFT JOIN router.assignments a ON a.lead_id = l.lead_id AND a.seq = 1
    LEFT JOIN LATERAL (
        SELECT trace FROM router.decisions x WHERE x.lead_id = l.lead_id ORDER BY x.id LIMIT 1
    ) d ON true
    WHERE l.received_at >= :since AND l.received_at < :until
    ORDER BY l.received_at, l.lead_id
    """
)

_OPEN_AT_START = text(
    """
    SELECT lead_id::text AS lead_id, received_at, email, phone, owner_id, team_id, open_until,
           closed_at
    FROM router.leads
    WHERE received_at < :since AND assignment_seq >= 1 AND owner_id IS NOT NULL
      AND (closed_at IS NULL OR closed_at > :since)
    ORDER BY received_at, lead_id
    """
)

_ACCOUNTS = text(
    """
    SELECT a.domain, a.owner_id FROM router.accounts a
    LEFT JOIN router.leads l ON l.lead_id = a.first_lead_id
    WHERE l.lead_id IS NULL OR l.received_at < :since
    ORDER BY a.domain
    """
)


async def load_history(session: AsyncSession, *, since: datetime, until: datetime) -> History:
    """Every lead received in ``[since, until)`` with its first real decision, plus the state
    the router had at ``since`` (open leads per owner, learned accounts)."""
    params = {"since": since, "until": until, "mark": CAPACITY_MARK}
    rows = (await session.execute(_LEADS, params)).mappings().all()
    leads = tuple(
        HistoricLead(
            lead_id=r["lead_id"],
            received_at=r["received_at"],
            closed_at=r["closed_at"],
            status=r["status"],
            email=r["email"],
            phone=r["phone"],
            lead=r["lead"],
            score=r["score"],
            tier=r["tier"],
            stage=r["stage"],
            owner_id=r["owner_id"],
            team_id=r["team_id"],
            rule_id=r["rule_id"],
            fallback_used="fallback team" in (r["reason"] or ""),
            capacity_skip=bool(r["capacity_skip"]),
            reassigned=(r["assignment_seq"] or 0) > 1,
        )
        for r in rows
    )
    open_rows = (await session.execute(_OPEN_AT_START, {"since": since})).mappings().all()
    open_at_start = tuple(OpenLead(**dict(r)) for r in open_rows)
    accounts = {r.domain: r.owner_id for r in await session.execute(_ACCOUNTS, {"since": since})}
    return History(since, until, leads, open_at_start, accounts)


# --- one lead's audit (baton explain) --------------------------------------------------------


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


# --- outcomes (calibration) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """A lead of the period with its score, first routing and every activity type recorded."""

    lead_id: str
    source: str
    status: str
    score: int | None
    stage: str | None
    tier: str | None
    lead: dict[str, Any]
    rule_id: str | None
    owner_id: str | None
    activity_types: tuple[str, ...]
    rejection_notes: tuple[str, ...]


_OUTCOMES = text(
    """
    SELECT l.lead_id::text AS lead_id, l.source, l.status, l.score, l.stage, l.tier, l.lead,
           a.rule_id, a.owner_id,
           coalesce(o.types, ARRAY[]::text[]) AS types,
           coalesce(o.notes, ARRAY[]::text[]) AS notes
    FROM router.leads l
    LEFT JOIN router.assignments a ON a.lead_id = l.lead_id AND a.seq = 1
    LEFT JOIN LATERAL (
        SELECT array_agg(f.type ORDER BY f.at, f.activity_id) AS types,
               array_agg(coalesce(f.note, '') ORDER BY f.at, f.activity_id)
                   FILTER (WHERE f.type = 'rejected') AS notes
        FROM followup.activities f WHERE f.lead_id = l.lead_id
    ) o ON true
    WHERE l.received_at >= :since AND l.received_at < :until
    ORDER BY l.received_at, l.lead_id
    """
)


async def load_outcomes(
    session: AsyncSession, *, since: datetime, until: datetime
) -> list[OutcomeRow]:
    rows = (await session.execute(_OUTCOMES, {"since": since, "until": until})).mappings()
    return [
        OutcomeRow(
            lead_id=r["lead_id"],
            source=r["source"],
            status=r["status"],
            score=r["score"],
            stage=r["stage"],
            tier=r["tier"],
            lead=r["lead"],
            rule_id=r["rule_id"],
            owner_id=r["owner_id"],
            activity_types=tuple(r["types"]),
            rejection_notes=tuple(r["notes"]),
        )
        for r in rows
    ]
