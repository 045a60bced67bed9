"""SQL of the contacts' identity keys (`router.contact_keys`, migration router_0008).

The hot path uses two fragments that `store` splices into its statements, so a decision
still reads with one statement and writes with one: `CANDIDATES` (a lateral probe per lead:
the leads its e-mail key and phone point at, grouped per lead, each with whether merges may
go into it) and `WRITE_KEYS` (a CTE storing the keys of the leads written). The rest is for
erasure: find a contact's leads by key, and drop the keys of erased leads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.router.domain.matching import Candidate

CANDIDATE_LIMIT = 20  # newest key rows read per key: a switchboard's many colleagues stay cheap
# A merge may go into a lead in one of these states, not closed, inside the dedupe window.
MERGEABLE = ("assigned", "nurtured", "parked")

_PROBE = (
    "(SELECT '{via}' AS via, c.target_id, c.email_key, c.name FROM router.contact_keys c "
    "WHERE c.key = {key} ORDER BY c.at DESC LIMIT " + str(CANDIDATE_LIMIT) + ")"
)
_OPEN = (
    f"l.status IN ({', '.join(repr(s) for s in MERGEABLE)}) AND l.closed_at IS NULL "
    "AND l.open_until > :now"
)
CANDIDATES = (
    "LEFT JOIN LATERAL (SELECT jsonb_agg(jsonb_build_object('via', g.via, "
    "'lead_id', l.lead_id::text, 'emails', g.emails, 'names', g.names, "
    "'at', extract(epoch FROM l.received_at), 'open', " + _OPEN + ", "
    "'row', CASE WHEN " + _OPEN + " THEN jsonb_build_object('status', l.status, "
    "'owner_id', l.owner_id, 'team_id', l.team_id, 'assignment_seq', l.assignment_seq, "
    "'lead', l.lead) END)) AS cands "
    "FROM (SELECT k.via, k.target_id, "
    "coalesce(array_agg(DISTINCT k.email_key) FILTER (WHERE k.email_key IS NOT NULL), '{}') "
    "AS emails, coalesce(array_agg(DISTINCT k.name) FILTER (WHERE k.name IS NOT NULL), '{}') "
    "AS names FROM ("
    + _PROBE.format(via="email", key="i.ekey")
    + " UNION ALL "
    + _PROBE.format(via="phone", key="'p:' || i.phone")
    + ") k GROUP BY k.via, k.target_id) g "
    # OFFSET 0: each candidate's lead by its primary key, never a join over all leads
    "CROSS JOIN LATERAL (SELECT * FROM router.leads l WHERE l.lead_id = g.target_id OFFSET 0) l"
    ") mc ON true"
)
WRITE_KEYS = (
    "ck AS (INSERT INTO router.contact_keys (key, lead_id, target_id, email_key, name, at) "
    "SELECT * FROM unnest(CAST(:k_key AS text[]), CAST(:k_lead AS uuid[]), "
    "CAST(:k_target AS uuid[]), CAST(:k_email AS text[]), CAST(:k_name AS text[]), "
    "CAST(:k_at AS timestamptz[])) ON CONFLICT (lead_id, key) DO UPDATE SET "
    "target_id = excluded.target_id, email_key = excluded.email_key, name = excluded.name, "
    "at = excluded.at)"
)


def key_params(
    rows: Sequence[tuple[str, str, str, str | None, str | None, datetime]],
) -> dict[str, Any]:
    """`WRITE_KEYS`'s parameters from `domain.matching.key_rows`."""
    cols = ("k_key", "k_lead", "k_target", "k_email", "k_name", "k_at")
    return {c: [r[i] for r in rows] for i, c in enumerate(cols)}


def candidates(raw: Any) -> list[Candidate]:
    """The `cands` column of `CANDIDATES` (jsonb, decoded or not) as `Candidate`s."""
    if raw is None:
        return []
    items = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return [
        Candidate(
            via=c["via"],
            lead_id=c["lead_id"],
            emails=frozenset(c["emails"] or ()),
            names=frozenset(c["names"] or ()),
            open=bool(c["open"]),
            at=float(c["at"]),
            row=c["row"] or {},
        )
        for c in items
    ]


async def lead_ids_by_keys(session: AsyncSession, keys: list[str]) -> list[str]:
    """The leads that gave any of these keys (an erasure finds `+tag` variants this way)."""
    if not keys:
        return []
    rows = await session.execute(
        text(
            "SELECT DISTINCT lead_id::text FROM router.contact_keys "
            "WHERE key = ANY(CAST(:keys AS text[]))"
        ),
        {"keys": keys},
    )
    return [r[0] for r in rows]


async def forget_keys(session: AsyncSession, lead_ids: list[str]) -> None:
    """Drop the identity keys erased leads gave (they are their e-mail, phone and name)."""
    await session.execute(
        text("DELETE FROM router.contact_keys WHERE lead_id = ANY(CAST(:ids AS uuid[]))"),
        {"ids": lead_ids},
    )
