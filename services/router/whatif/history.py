"""Read-only SQL for the simulator: the history to replay, from the router's own schema.

Only SELECTs. Personal data is not selected except the email and phone the simulator needs
(in memory only) to replay the open-lead dedupe exactly as the router does. (The operator
tools that also read followup's schema, explain and calibration, own their queries in `ops/`.)
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
    first_kind: str | None = None  # the kind of its first decision (router.decisions)

    @property
    def outcome(self) -> str:
        """assigned | merged | disqualified | unassigned | nurtured (closed leads were
        assigned first; a lead first kept in nurture is nurtured, whatever came later)."""
        if self.first_kind == "nurtured":
            return "nurtured"
        if self.owner_id is None and self.status in ("merged", "disqualified", "unassigned"):
            return self.status
        return "assigned"


@dataclass(frozen=True, slots=True)
class OpenLead:
    """A lead assigned (or nurtured) before the period and still open at its start (load,
    dedupe)."""

    lead_id: str
    received_at: datetime
    email: str | None
    phone: str | None
    owner_id: str | None  # None: nurtured (touches merge into it; no load)
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
           coalesce(l.received_lead, l.lead) AS lead, l.score, l.tier, l.stage, l.assignment_seq,
           a.owner_id, a.team_id, a.rule_id, a.reason,
           coalesce(position(:mark in d.trace::text) > 0, false) AS capacity_skip,
           d.kind AS first_kind
    FROM router.leads l
    LEFT JOIN router.assignments a ON a.lead_id = l.lead_id AND a.seq = 1
    LEFT JOIN LATERAL (
        SELECT trace, kind FROM router.decisions x WHERE x.lead_id = l.lead_id
        ORDER BY x.id LIMIT 1
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
    WHERE received_at < :since
      AND (assignment_seq >= 1 AND owner_id IS NOT NULL OR status = 'nurtured')
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
    leads = tuple(_historic(r) for r in rows)
    open_rows = (await session.execute(_OPEN_AT_START, {"since": since})).mappings().all()
    open_at_start = tuple(OpenLead(**dict(r)) for r in open_rows)
    accounts = {r.domain: r.owner_id for r in await session.execute(_ACCOUNTS, {"since": since})}
    return History(since, until, leads, open_at_start, accounts)


def _historic(r: Any) -> HistoricLead:
    """One row of `_LEADS`; a lead first kept in nurture had no owner then (its later handoff
    or re-engagement is not its first decision)."""
    nurtured = r["first_kind"] == "nurtured"
    return HistoricLead(
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
        owner_id=None if nurtured else r["owner_id"],
        team_id=None if nurtured else r["team_id"],
        rule_id=None if nurtured else r["rule_id"],
        fallback_used="fallback team" in (r["reason"] or ""),
        capacity_skip=bool(r["capacity_skip"]),
        reassigned=(r["assignment_seq"] or 0) > 1,
        first_kind=r["first_kind"],
    )
