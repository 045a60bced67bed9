"""Pairwise precision and recall of the router's merges against the generator's ground truth.

A touch the router merged (`lead.merged`) belongs to the lead it was merged into; any other
decision starts a lead of its own; a touch intake refused (no usable contact) stays alone.
Two touches are a predicted pair when they end in one lead, a true pair when one person sent
both. Precision = predicted pairs that are true / predicted pairs; recall = true pairs that
were predicted / true pairs (the usual pairwise measures of entity resolution).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bench.matching.generator import Touch


@dataclass(frozen=True)
class Outcome:
    """What became of one touch: intake's lead id (None if refused) and the router's event."""

    index: int
    lead_id: str | None
    event_type: str | None  # lead.assigned, lead.merged, lead.disqualified, ...
    into_lead_id: str | None = None


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int


def leads_of(outcomes: Iterable[Outcome]) -> dict[int, str]:
    """Touch index -> the lead it ended in (merges followed to the end of the chain)."""
    into = {o.lead_id: o.into_lead_id for o in outcomes if o.lead_id and o.into_lead_id}

    def root(lead: str) -> str:
        seen = set()
        while lead in into and lead not in seen:
            seen.add(lead)
            lead = into[lead]
        return lead

    return {o.index: root(o.lead_id) if o.lead_id else f"refused-{o.index}" for o in outcomes}


def _pairs(sizes: Iterable[int]) -> int:
    return sum(n * (n - 1) // 2 for n in sizes)


def pairwise(truth: Mapping[int, int], predicted: Mapping[int, str]) -> Scores:
    """Pairwise scores of `predicted` (touch -> lead) against `truth` (touch -> person)."""
    keys = truth.keys() & predicted.keys()
    true_pairs = _pairs(Counter(truth[k] for k in keys).values())
    predicted_pairs = _pairs(Counter(predicted[k] for k in keys).values())
    correct = _pairs(Counter((truth[k], predicted[k]) for k in keys).values())
    return Scores(
        precision=correct / predicted_pairs if predicted_pairs else 1.0,
        recall=correct / true_pairs if true_pairs else 1.0,
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct,
    )


def recall_by_kind(touches: Iterable[Touch], predicted: Mapping[int, str]) -> dict[str, list[int]]:
    """Per kind of mess: [repeat touches linked to an earlier touch of their person, repeat
    touches with that mess]. A clean repeat counts under "clean"."""
    earlier: dict[int, set[str]] = {}
    out: dict[str, list[int]] = {}
    for t in sorted(touches, key=lambda t: t.index):
        lead = predicted.get(t.index)
        mine = earlier.setdefault(t.person, set())
        if mine:
            linked = int(lead in mine)
            for kind in t.kinds or ["clean"]:
                counts = out.setdefault(kind, [0, 0])
                counts[0] += linked
                counts[1] += 1
        if lead is not None:
            mine.add(lead)
    return dict(sorted(out.items()))
