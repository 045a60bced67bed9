"""`baton explain`: one lead's decisions and follow-up as a timeline in plain words.

``queries`` reads what the router and followup stored about the lead (read-only);
``timeline`` turns it into words (pure). Contact data is never read nor printed.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from ops.explain.queries import load_audit
from ops.explain.timeline import render
from shared.errors import LeadNotFound
from shared.policy import Policy


async def explain_lead(session: AsyncSession, lead_id: str, *, policy: Policy | None) -> str:
    """The lead's timeline; `LeadNotFound` when the router never stored that id."""
    audit = await load_audit(session, lead_id)
    if audit is None:
        raise LeadNotFound(f"no lead {lead_id}")
    return render(audit, policy)
