"""The rows decisions produce, gathered in memory and written by `store.write` in one statement.

Pure data: the outcome functions (`domain.outcomes`) fill it, the store turns it into SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from services.router.domain.assignment import RepState


@dataclass
class Writes:
    """The rows one or more decisions produce, written by `store.write` in a single statement.

    Rep-state changes are merged per rep (open-lead deltas add up, the last round-robin
    weight wins), so a statement never touches one rep_state row twice.
    """

    leads: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[tuple[str, str, str]] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    open_deltas: dict[str, int] = field(default_factory=dict)
    weights: dict[str, int] = field(default_factory=dict)
    decisions: list[tuple[str, str, str, datetime, str]] = field(default_factory=list)
    outbox: list[tuple[str, str, str, bytes]] = field(default_factory=list)
    # Stored leads' new documents (a merged touch's facts reach its open lead), one per lead.
    lead_docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Learned accounts whose owner left the policy: (domain, departed owner, new owner, lead).
    account_moves: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add_open(self, rep_id: str, delta: int) -> None:
        self.open_deltas[rep_id] = self.open_deltas.get(rep_id, 0) + delta

    def set_weights(self, weights: Mapping[str, int]) -> None:
        self.weights.update(weights)

    def decision(
        self, *, lead_id: str, kind: str, policy_version: str, at: datetime, trace: dict[str, Any]
    ) -> None:
        blob = orjson.dumps(trace, default=str).decode()
        self.decisions.append((lead_id, kind, policy_version, at, blob))

    def applied_to(self, states: Mapping[str, RepState]) -> dict[str, RepState]:
        """The rep states as they will be once these writes commit (for the gauges)."""
        out = dict(states)
        for rep in set(self.open_deltas) | set(self.weights):
            old = out.get(rep) or RepState(rep)
            out[rep] = replace(  # a pause stays as it was
                old,
                open_leads=max(old.open_leads + self.open_deltas.get(rep, 0), 0),
                rr_current_weight=self.weights.get(rep, old.rr_current_weight),
            )
        return out
