"""Read-only SQL for the calibration report: each lead of a period with its first routing
(router schema) and every activity recorded for it (followup schema).

Only a SELECT. The followup schema is read here because the calibration report is an operator
tool run from the CLI, never code a running service calls: services still learn about each
other only from events. No contact data is selected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


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
    lost_reasons: tuple[str | None, ...] = ()  # reason codes of rejections/disqualifications


_OUTCOMES = text(
    """
    SELECT l.lead_id::text AS lead_id, l.source, l.status, l.score, l.stage, l.tier, l.lead,
           a.rule_id, a.owner_id,
           coalesce(o.types, ARRAY[]::text[]) AS types,
           coalesce(o.notes, ARRAY[]::text[]) AS notes,
           coalesce(o.reasons, ARRAY[]::text[]) AS reasons
    FROM router.leads l
    LEFT JOIN router.assignments a ON a.lead_id = l.lead_id AND a.seq = 1
    LEFT JOIN LATERAL (
        SELECT array_agg(f.type ORDER BY f.at, f.activity_id) AS types,
               array_agg(coalesce(f.note, '') ORDER BY f.at, f.activity_id)
                   FILTER (WHERE f.type = 'rejected') AS notes,
               array_agg(f.reason ORDER BY f.at, f.activity_id)
                   FILTER (WHERE f.type IN ('rejected', 'disqualified')) AS reasons
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
            lost_reasons=tuple(r["reasons"]),
        )
        for r in rows
    ]
