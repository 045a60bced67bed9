"""SQL for a rep's pause: consecutive missed SLAs and the pause they lead to, kept on the
rep's `router.rep_state` row (read with the rest of the rep state by every decision).

Never commits. Callers hold the assignment lock (`store.lock_assignments`), the order every
writer of `rep_state` takes, so a batch mixing decisions and escalations cannot deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class PauseState:
    rep_id: str
    missed_slas: int
    paused_at: datetime | None
    paused_reason: str | None


async def record_missed(session: AsyncSession, rep_id: str) -> PauseState:
    """One more missed SLA in a row; the rep's state after it."""
    row = (
        await session.execute(
            text(
                "INSERT INTO router.rep_state AS s (rep_id, missed_slas) VALUES (:r, 1) "
                "ON CONFLICT (rep_id) DO UPDATE SET missed_slas = s.missed_slas + 1, "
                "updated_at = now() RETURNING rep_id, missed_slas, paused_at, paused_reason"
            ),
            {"r": rep_id},
        )
    ).one()
    return PauseState(*row)


async def pause(session: AsyncSession, *, rep_id: str, reason: str, at: datetime) -> None:
    await session.execute(
        text(
            "UPDATE router.rep_state SET paused_at = :at, paused_reason = :why, "
            "updated_at = now() WHERE rep_id = :r AND paused_at IS NULL"
        ),
        {"r": rep_id, "why": reason, "at": at},
    )


async def reset(session: AsyncSession, rep_id: str) -> PauseState | None:
    """The rep acted or was resumed: no missed SLAs, not paused. Returns the state before
    (None when the rep has no state row yet)."""
    row = (
        await session.execute(
            text(
                "UPDATE router.rep_state s SET missed_slas = 0, paused_at = NULL, "
                "paused_reason = NULL, updated_at = now() FROM (SELECT rep_id, missed_slas, "
                "paused_at, paused_reason FROM router.rep_state WHERE rep_id = :r FOR UPDATE) o "
                "WHERE s.rep_id = o.rep_id "
                "RETURNING o.rep_id, o.missed_slas, o.paused_at, o.paused_reason"
            ),
            {"r": rep_id},
        )
    ).first()
    return PauseState(*row) if row else None


async def pause_states(session: AsyncSession) -> dict[str, PauseState]:
    rows = await session.execute(
        text("SELECT rep_id, missed_slas, paused_at, paused_reason FROM router.rep_state")
    )
    return {r[0]: PauseState(*r) for r in rows}


async def pause_state(session: AsyncSession, rep_id: str) -> PauseState | None:
    """The rep's count and pause as committed (no lock: a cheap look before locking)."""
    row = (
        await session.execute(
            text(
                "SELECT rep_id, missed_slas, paused_at, paused_reason FROM router.rep_state "
                "WHERE rep_id = :r"
            ),
            {"r": rep_id},
        )
    ).first()
    return PauseState(*row) if row else None
