"""Batch mode for `lead.received`: a fetch is cut into runs whose leads are decided from one
read, as if one at a time (`RouterService.on_received_many`).

Two leads of a run share no lookup key, so each one's inputs can be read before any of them
is written; what an earlier lead of the run changes for a later one's business domain (the
account it claimed, the leads now stored under the domain) is applied from memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.router import store
from services.router.domain.accounts import business_domain
from services.router.domain.assignment import RepState
from services.router.domain.matching import fold_name, merge_facts
from shared.events import Lead


def keys_of(lead: Lead) -> store.LeadKeys:
    """What the lead's decision looks other rows up by."""
    return store.LeadKeys(
        lead.lead_id,
        lead.contact.email,
        lead.contact.phone,
        business_domain(lead),
        fold_name(lead.contact.first_name, lead.contact.last_name),
    )


@dataclass
class RunOverlay:
    """What the leads decided earlier in a run change for a business domain, before it is
    written: the account the first assigned lead claimed and the leads now stored under the
    domain (both read from the database for the leads outside the run)."""

    accounts: dict[str, str] = field(default_factory=dict)  # business domain -> first owner
    by_domain: dict[str, list[tuple[str, datetime]]] = field(default_factory=dict)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # open leads merged into
    moved: dict[str, str] = field(default_factory=dict)  # account -> owner after its owner left

    def merged(self, writes: store.Writes, found: store.DecisionInputs, lead: Lead) -> None:
        """A touch merged into ``found.open_lead``: its facts reach that lead's document
        (`domain.matching.merge_facts`), written with the run and read by its later touches."""
        if found.open_lead is not None:
            doc = merge_facts(found.open_lead.lead, lead.model_dump(mode="json"))
            self.docs[found.open_lead.lead_id] = writes.lead_docs[found.open_lead.lead_id] = doc

    @staticmethod
    def mark(writes: store.Writes) -> tuple[int, int]:
        return len(writes.leads), len(writes.accounts)

    def record(self, writes: store.Writes, mark: tuple[int, int], lead: Lead) -> None:
        if len(writes.leads) > mark[0] and lead.contact.company_domain:
            stored = self.by_domain.setdefault(lead.contact.company_domain, [])
            stored.append((lead.lead_id, lead.received_at))
        for domain, owner_id, _ in writes.accounts[mark[1] :]:
            self.accounts.setdefault(domain, owner_id)  # ON CONFLICT DO NOTHING: first wins
        for domain, _, owner_id, _ in writes.account_moves:  # domain.account_moves
            self.moved[domain] = owner_id

    def apply(
        self,
        found: store.DecisionInputs,
        domain: str | None,
        states: dict[str, RepState],
    ) -> store.DecisionInputs:
        row = found.open_lead
        if row is not None and row.lead_id in self.docs:  # merged into earlier in this run
            found = replace(found, open_lead=replace(row, lead=self.docs[row.lead_id]))
        if not domain or not (
            {domain} & (self.accounts.keys() | self.by_domain.keys() | self.moved.keys())
        ):
            return replace(found, states=states)
        earlier = found.earlier
        if domain in self.by_domain:
            merged = earlier + self.by_domain[domain]
            merged.sort(key=lambda pair: pair[1], reverse=True)
            earlier = merged[: store.EARLIER_LIMIT]
        owner = self.moved.get(domain) or found.account_owner or self.accounts.get(domain)
        return replace(found, states=states, earlier=earlier, account_owner=owner)


def runs(
    items: list[tuple[Lead, store.LeadKeys]],
) -> list[list[tuple[Lead, store.LeadKeys]]]:
    """Split leads, in order, into runs in which no two share a lookup key (`LeadKeys.keys`)."""
    runs: list[list[tuple[Lead, store.LeadKeys]]] = []
    taken: set[tuple[str, str]] = set()
    for item in items:
        keys = item[1].keys()
        if not runs or keys & taken:
            runs.append([])
            taken = set()
        runs[-1].append(item)
        taken |= keys
    return runs
