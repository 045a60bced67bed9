"""All SQL for the router schema. Never commits: the consumer/request edge owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.domain.assignment import RepState

# One lock serialises assignment decisions across every router instance, so round-robin
# pointers and rep loads are read and written by one decision at a time.
ASSIGN_LOCK = 0x62A7_0001


@dataclass(frozen=True, slots=True)
class LeadRow:
    lead_id: str
    status: str
    owner_id: str | None
    team_id: str | None
    assignment_seq: int
    lead: dict[str, Any]
    closed_at: datetime | None


async def lock_assignments(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ASSIGN_LOCK})


async def rep_states(session: AsyncSession) -> dict[str, RepState]:
    rows = await session.execute(
        text("SELECT rep_id, open_leads, rr_current_weight FROM router.rep_state")
    )
    return {r.rep_id: RepState(r.rep_id, r.open_leads, r.rr_current_weight) for r in rows}


async def save_rr_weights(session: AsyncSession, weights: Mapping[str, int]) -> None:
    if weights:
        await session.execute(
            text(
                "INSERT INTO router.rep_state (rep_id, rr_current_weight) VALUES (:rep, :w) "
                "ON CONFLICT (rep_id) DO UPDATE SET rr_current_weight = excluded.rr_current_weight,"
                " updated_at = now()"
            ),
            [{"rep": k, "w": v} for k, v in weights.items()],
        )


async def add_open_leads(session: AsyncSession, rep_id: str, delta: int) -> None:
    await session.execute(
        text(
            "INSERT INTO router.rep_state (rep_id, open_leads) VALUES (:rep, greatest(:d, 0)) "
            "ON CONFLICT (rep_id) DO UPDATE SET "
            "open_leads = greatest(router.rep_state.open_leads + :d, 0), updated_at = now()"
        ),
        {"rep": rep_id, "d": delta},
    )


async def get_lead(session: AsyncSession, lead_id: str, *, lock: bool = False) -> LeadRow | None:
    sql = (
        "SELECT lead_id::text, status, owner_id, team_id, assignment_seq, lead, closed_at "
        "FROM router.leads WHERE lead_id = :id"
    )
    r = (
        await session.execute(text(sql + (" FOR UPDATE" if lock else "")), {"id": lead_id})
    ).first()
    return LeadRow(*r) if r else None


async def find_open_lead(
    session: AsyncSession, *, email: str | None, phone: str | None, now: datetime
) -> LeadRow | None:
    """The same person's latest lead that is still open (assigned, not closed, inside the window)."""
    if not email and not phone:
        return None
    r = (
        await session.execute(
            text(
                "SELECT lead_id::text, status, owner_id, team_id, assignment_seq, lead, closed_at "
                "FROM router.leads WHERE status = 'assigned' AND closed_at IS NULL "
                "AND open_until > :now AND ((:email)::text IS NOT NULL AND email = :email "
                "OR (:phone)::text IS NOT NULL AND phone = :phone) "
                "ORDER BY received_at DESC LIMIT 1"
            ),
            {"email": email, "phone": phone, "now": now},
        )
    ).first()
    return LeadRow(*r) if r else None


async def earlier_leads(
    session: AsyncSession,
    *,
    email: str | None,
    phone: str | None,
    domain: str | None,
    exclude: str | None = None,
    limit: int = 10,
) -> list[str]:
    """Ids of earlier leads from the same contact (email or phone) or account, newest first."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text FROM router.leads WHERE ((:email)::text IS NOT NULL "
            "AND email = :email OR (:phone)::text IS NOT NULL AND phone = :phone "
            "OR (:domain)::text IS NOT NULL AND company_domain = :domain) "
            "AND ((:exclude)::uuid IS NULL OR lead_id <> (:exclude)::uuid) "
            "ORDER BY received_at DESC LIMIT :limit"
        ),
        {"email": email, "phone": phone, "domain": domain, "exclude": exclude, "limit": limit},
    )
    return [r[0] for r in rows]


async def account_owner(session: AsyncSession, domain: str) -> str | None:
    owner: str | None = await session.scalar(
        text("SELECT owner_id FROM router.accounts WHERE domain = :d"), {"d": domain}
    )
    return owner


async def claim_account(session: AsyncSession, *, domain: str, owner_id: str, lead_id: str) -> None:
    await session.execute(
        text(
            "INSERT INTO router.accounts (domain, owner_id, first_lead_id) "
            "VALUES (:d, :o, :l) ON CONFLICT (domain) DO NOTHING"
        ),
        {"d": domain, "o": owner_id, "l": lead_id},
    )


async def insert_lead(session: AsyncSession, **row: Any) -> bool:
    row["lead"] = orjson.dumps(row["lead"]).decode()
    result = await session.execute(
        text(
            "INSERT INTO router.leads (lead_id, source, received_at, email, phone, company_domain, "
            "status, owner_id, team_id, assignment_seq, merged_into, score, tier, stage, "
            "policy_version, lead, open_until) VALUES (:lead_id, :source, :received_at, :email, "
            ":phone, :company_domain, :status, :owner_id, :team_id, :assignment_seq, :merged_into, "
            ":score, :tier, :stage, :policy_version, CAST(:lead AS jsonb), :open_until) "
            "ON CONFLICT (lead_id) DO NOTHING RETURNING 1"
        ),
        row,
    )
    return result.scalar() is not None


async def update_owner(
    session: AsyncSession, *, lead_id: str, owner_id: str, team_id: str, seq: int
) -> None:
    await session.execute(
        text(
            "UPDATE router.leads SET owner_id = :o, team_id = :t, assignment_seq = :s, "
            "status = 'assigned', updated_at = now() WHERE lead_id = :id"
        ),
        {"o": owner_id, "t": team_id, "s": seq, "id": lead_id},
    )


async def close_lead(session: AsyncSession, *, lead_id: str, status: str, at: datetime) -> None:
    await session.execute(
        text(
            "UPDATE router.leads SET status = :status, closed_at = :at, updated_at = now() "
            "WHERE lead_id = :id"
        ),
        {"status": status, "at": at, "id": lead_id},
    )


async def insert_assignment(session: AsyncSession, **row: Any) -> bool:
    result = await session.execute(
        text(
            "INSERT INTO router.assignments (lead_id, seq, owner_id, team_id, rule_id, strategy, "
            "reason, previous_owner_id, assigned_at, due_at, policy_version) VALUES (:lead_id, "
            ":seq, :owner_id, :team_id, :rule_id, :strategy, :reason, :previous_owner_id, "
            ":assigned_at, :due_at, :policy_version) ON CONFLICT DO NOTHING RETURNING 1"
        ),
        row,
    )
    return result.scalar() is not None


async def record_decision(
    session: AsyncSession,
    *,
    lead_id: str,
    kind: str,
    policy_version: str,
    at: datetime,
    trace: dict[str, Any],
) -> None:
    await session.execute(
        text(
            "INSERT INTO router.decisions (lead_id, kind, policy_version, at, trace) "
            "VALUES (:l, :k, :v, :at, CAST(:t AS jsonb))"
        ),
        {
            "l": lead_id,
            "k": kind,
            "v": policy_version,
            "at": at,
            "t": orjson.dumps(trace, default=str).decode(),
        },
    )


async def decisions_for(session: AsyncSession, lead_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT kind, policy_version, at, trace FROM router.decisions WHERE lead_id = :l "
            "ORDER BY id"
        ),
        {"l": lead_id},
    )
    return [dict(r._mapping) for r in rows]


async def parked_leads(session: AsyncSession, *, limit: int) -> list[dict[str, Any]]:
    """Leads no rep could take, oldest first; locked so two routers never retry the same one."""
    rows = await session.execute(
        text(
            "SELECT lead FROM router.leads WHERE status = 'unassigned' ORDER BY received_at "
            "LIMIT :limit FOR UPDATE SKIP LOCKED"
        ),
        {"limit": limit},
    )
    return [r[0] for r in rows]


async def delete_parked(session: AsyncSession, lead_id: str) -> None:
    await session.execute(
        text("DELETE FROM router.leads WHERE lead_id = :id AND status = 'unassigned'"),
        {"id": lead_id},
    )


async def count_parked(session: AsyncSession) -> int:
    return int(
        await session.scalar(text("SELECT count(*) FROM router.leads WHERE status = 'unassigned'"))
        or 0
    )


# --- erasure and retention -----------------------------------------------------------------


async def contact_lead_ids(
    session: AsyncSession, *, email: str | None, phone: str | None
) -> list[str]:
    """Every lead of the contact (same normalised e-mail or E.164 phone), locked."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text FROM router.leads WHERE ((:email)::text IS NOT NULL "
            "AND email = :email OR (:phone)::text IS NOT NULL AND phone = :phone) "
            "ORDER BY received_at FOR UPDATE"
        ),
        {"email": email, "phone": phone},
    )
    return [r[0] for r in rows]


async def expired_lead_ids(session: AsyncSession, *, before: datetime, limit: int) -> list[str]:
    """Leads received before `before` that still hold personal data, oldest first, locked."""
    rows = await session.execute(
        text(
            "SELECT lead_id::text FROM router.leads WHERE erased_at IS NULL "
            "AND received_at < :before ORDER BY received_at LIMIT :limit "
            "FOR UPDATE SKIP LOCKED"
        ),
        {"before": before, "limit": limit},
    )
    return [r[0] for r in rows]


async def lead_documents(session: AsyncSession, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT lead_id::text, lead FROM router.leads WHERE lead_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": lead_ids},
    )
    return {r[0]: r[1] for r in rows}


async def erase_lead(
    session: AsyncSession, *, lead_id: str, lead: dict[str, Any], at: datetime
) -> None:
    """Drop the contact columns and store the erased lead document (`erased_at` marks it)."""
    await session.execute(
        text(
            "UPDATE router.leads SET email = NULL, phone = NULL, lead = CAST(:lead AS jsonb), "
            "erased_at = coalesce(erased_at, :at), updated_at = now() WHERE lead_id = :id"
        ),
        {"id": lead_id, "lead": orjson.dumps(lead).decode(), "at": at},
    )


async def decision_traces(
    session: AsyncSession, lead_ids: list[str]
) -> list[tuple[int, dict[str, Any]]]:
    rows = await session.execute(
        text(
            "SELECT id, trace FROM router.decisions WHERE lead_id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY id"
        ),
        {"ids": lead_ids},
    )
    return [(r[0], r[1]) for r in rows]


async def replace_trace(session: AsyncSession, *, decision_id: int, trace: dict[str, Any]) -> None:
    await session.execute(
        text("UPDATE router.decisions SET trace = CAST(:t AS jsonb) WHERE id = :id"),
        {"id": decision_id, "t": orjson.dumps(trace, default=str).decode()},
    )


async def record_erasure(
    session: AsyncSession, *, erasure_id: str, reason: str, lead_ids: list[str], at: datetime
) -> None:
    await session.execute(
        text(
            "INSERT INTO router.erasures (erasure_id, reason, lead_ids, erased_at) "
            "VALUES (:id, :reason, CAST(:ids AS uuid[]), :at) ON CONFLICT DO NOTHING"
        ),
        {"id": erasure_id, "reason": reason, "ids": lead_ids, "at": at},
    )


async def get_erasure(session: AsyncSession, erasure_id: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(
                "SELECT erasure_id::text, reason, "
                "array(SELECT x::text FROM unnest(lead_ids) x) AS lead_ids, erased_at "
                "FROM router.erasures WHERE erasure_id = :id"
            ),
            {"id": erasure_id},
        )
    ).first()
    return dict(row._mapping) if row else None


async def assignments_for(session: AsyncSession, lead_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            "SELECT seq, owner_id, team_id, rule_id, strategy, reason, previous_owner_id, "
            "assigned_at, due_at, policy_version FROM router.assignments "
            "WHERE lead_id = :l ORDER BY seq"
        ),
        {"l": lead_id},
    )
    return [dict(r._mapping) for r in rows]
