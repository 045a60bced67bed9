"""The calibration report: how leads of each score band, stage, source and rule turned out.

Pure: built from ``queries.OutcomeRow`` values and the policy. A lead's outcome is the
strongest activity recorded for it (converted > disqualified > rejected > not ready > still
open); merged touches count for cost only; leads the router disqualified were never handed off.

*Handoff* = the lead got an owner. *Wasted handoff* = handed off and not converted.
The suggested threshold is the highest score ``T`` such that handing off only leads scoring
``T`` or more keeps at least ``keep`` (default: all) of the conversions; it is the score below
which every handoff so far was wasted.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ops.calibration.queries import OutcomeRow
from services.router.domain.facts import flatten_lead
from services.router.domain.scoring import score
from shared.logs import scrub
from shared.policy import Policy

BAND_WIDTH = 10
OUTCOME_ORDER = ("converted", "disqualified", "rejected", "not_ready")
NO_REASON = "(no reason given)"
NO_REASON_CODE = "(no reason code)"
LOST = ("disqualified", "rejected")


def lost_reason(row: OutcomeRow) -> str:
    """The reason code of a lost lead: the last one sales gave (a later rejection says more
    than an earlier one), or NO_REASON_CODE for activities recorded before codes existed."""
    codes = [code for code in row.lost_reasons if code]
    return codes[-1] if codes else NO_REASON_CODE


@dataclass(frozen=True, slots=True)
class LostGroup:
    """Leads sales lost (disqualified, or rejected and never converted) for one reason code,
    by source, first routing rule and stage: did these leads meet the definition?"""

    leads: int = 0
    by_source: tuple[tuple[str, int], ...] = ()
    by_rule: tuple[tuple[str, int], ...] = ()
    by_stage: tuple[tuple[str, int], ...] = ()

    def add(self, *, source: str, rule: str, stage: str) -> LostGroup:
        def bump(pairs: tuple[tuple[str, int], ...], key: str) -> tuple[tuple[str, int], ...]:
            counts = dict(pairs)
            counts[key] = counts.get(key, 0) + 1
            return tuple(sorted(counts.items()))

        return LostGroup(
            self.leads + 1,
            bump(self.by_source, source),
            bump(self.by_rule, rule),
            bump(self.by_stage, stage),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "by_source": dict(self.by_source),
            "by_rule": dict(self.by_rule),
            "by_stage": dict(self.by_stage),
        }


def outcome_of(row: OutcomeRow) -> str:
    """merged | screened_out | unassigned | converted | disqualified | rejected | not_ready | open"""
    if row.status == "merged":
        return "merged"
    if row.owner_id is None:
        return "screened_out" if row.status == "disqualified" else "unassigned"
    for kind in OUTCOME_ORDER:
        if kind in row.activity_types:
            return kind
    return "open"


def band_of(value: int) -> str:
    low = (value // BAND_WIDTH) * BAND_WIDTH
    return f"{low:03d}-{low + BAND_WIDTH - 1:03d}"


def reason_key(note: str) -> str:
    """A rejection note as a short grouping key: trimmed, lower-cased, no contact data."""
    words = " ".join(note.split()).strip(" .").lower()
    return scrub(words)[:60] or NO_REASON


@dataclass(frozen=True, slots=True)
class Rate:
    leads: int = 0
    handed_off: int = 0
    converted: int = 0
    rejected: int = 0
    disqualified: int = 0

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.leads if self.leads else 0.0

    def add(self, outcome: str, *, rejected: bool) -> Rate:
        """Count one lead; ``rejected``: sales sent it back at least once (whatever came next)."""
        handed = outcome not in ("screened_out", "unassigned")
        return Rate(
            self.leads + 1,
            self.handed_off + handed,
            self.converted + (outcome == "converted"),
            self.rejected + rejected,
            self.disqualified + (outcome == "disqualified"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "handed_off": self.handed_off,
            "converted": self.converted,
            "rejected": self.rejected,
            "disqualified": self.disqualified,
            "conversion_rate": round(self.conversion_rate, 4),
        }


@dataclass(frozen=True, slots=True)
class SourceCost:
    source: str
    leads: int
    cost_per_lead: float | None
    opportunities: int

    @property
    def cost(self) -> float | None:
        return None if self.cost_per_lead is None else round(self.leads * self.cost_per_lead, 2)

    @property
    def cost_per_opportunity(self) -> float | None:
        if self.cost is None or not self.opportunities:
            return None
        return round(self.cost / self.opportunities, 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "cost_per_lead": self.cost_per_lead,
            "cost": self.cost,
            "opportunities": self.opportunities,
            "cost_per_opportunity": self.cost_per_opportunity,
        }


@dataclass(frozen=True, slots=True)
class Suggestion:
    threshold: int
    keep: float
    handoffs_now: int
    handoffs_at_threshold: int
    conversions_now: int
    conversions_kept: int
    current_min_stage_score: int | None  # the policy's lowest stage threshold, for context

    @property
    def wasted_now(self) -> int:
        return self.handoffs_now - self.conversions_now

    @property
    def wasted_at_threshold(self) -> int:
        return self.handoffs_at_threshold - self.conversions_kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "keep": self.keep,
            "handoffs_now": self.handoffs_now,
            "handoffs_at_threshold": self.handoffs_at_threshold,
            "conversions_now": self.conversions_now,
            "conversions_kept": self.conversions_kept,
            "wasted_now": self.wasted_now,
            "wasted_at_threshold": self.wasted_at_threshold,
            "wasted_avoided": self.wasted_now - self.wasted_at_threshold,
            "policy_min_stage_score": self.current_min_stage_score,
        }


def suggest_threshold(
    scored: Sequence[tuple[int, bool]], *, keep: float = 1.0, min_stage: int | None = None
) -> Suggestion | None:
    """Highest ``T`` keeping ``ceil(keep * conversions)`` of the handed-off leads' conversions."""
    if not 0 < keep <= 1:
        raise ValueError("keep must be in (0, 1]")
    conversions = sum(1 for _, converted in scored if converted)
    if conversions == 0:
        return None
    needed = math.ceil(keep * conversions - 1e-9)
    kept = 0
    threshold = 0
    for value in sorted({s for s, converted in scored if converted}, reverse=True):
        kept = sum(1 for s, converted in scored if converted and s >= value)
        if kept >= needed:
            threshold = value
            break
    return Suggestion(
        threshold=threshold,
        keep=keep,
        handoffs_now=len(scored),
        handoffs_at_threshold=sum(1 for s, _ in scored if s >= threshold),
        conversions_now=conversions,
        conversions_kept=kept,
        current_min_stage_score=min_stage,
    )


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    since: datetime
    until: datetime
    leads: int
    outcomes: dict[str, int]
    by_band: dict[str, Rate]
    by_stage: dict[str, Rate]
    by_source: dict[str, Rate]
    by_rule: dict[str, Rate]
    by_signal: dict[str, Rate]  # scoring rules, re-evaluated with the given policy
    rejections: dict[str, dict[str, int]]  # reason -> stage -> count
    costs: dict[str, SourceCost]
    suggestion: Suggestion | None
    lost: dict[str, LostGroup] = field(default_factory=dict)  # reason code -> breakdown

    def dimensions(self) -> dict[str, dict[str, Rate]]:
        return {
            "band": self.by_band,
            "stage": self.by_stage,
            "source": self.by_source,
            "rule": self.by_rule,
            "signal": self.by_signal,
        }

    def as_dict(self) -> dict[str, Any]:
        total_cost = [c.cost for c in self.costs.values() if c.cost is not None]
        costed_opps = sum(c.opportunities for c in self.costs.values() if c.cost is not None)
        return {
            "period": {"since": self.since.isoformat(), "until": self.until.isoformat()},
            "leads": self.leads,
            "outcomes": dict(self.outcomes),
            **{
                f"by_{name}": {k: v.as_dict() for k, v in rates.items()}
                for name, rates in self.dimensions().items()
            },
            "rejections": {k: dict(v) for k, v in self.rejections.items()},
            "lost_by_reason": {k: v.as_dict() for k, v in self.lost.items()},
            "costs": {k: v.as_dict() for k, v in self.costs.items()},
            "cost_per_opportunity": (
                round(sum(total_cost) / costed_opps, 2) if total_cost and costed_opps else None
            ),
            "suggestion": self.suggestion.as_dict() if self.suggestion else None,
        }


def _sorted(groups: dict[str, Rate]) -> dict[str, Rate]:
    return {k: groups[k] for k in sorted(groups)}


def calibrate(
    rows: Iterable[OutcomeRow],
    policy: Policy,
    *,
    since: datetime,
    until: datetime,
    keep: float = 1.0,
) -> CalibrationReport:
    outcomes: dict[str, int] = defaultdict(int)
    groups: dict[str, dict[str, Rate]] = {
        name: defaultdict(Rate) for name in ("band", "stage", "source", "rule", "signal")
    }
    rejections: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    lost: dict[str, LostGroup] = defaultdict(LostGroup)
    leads_per_source: dict[str, int] = defaultdict(int)
    opps_per_source: dict[str, int] = defaultdict(int)
    scored: list[tuple[int, bool]] = []
    n = 0
    for row in rows:
        n += 1
        outcome = outcome_of(row)
        outcomes[outcome] += 1
        leads_per_source[row.source] += 1
        if outcome == "merged":
            continue
        opps_per_source[row.source] += outcome == "converted"

        was_rejected = "rejected" in row.activity_types

        def put(name: str, key: str, outcome: str = outcome, rej: bool = was_rejected) -> None:
            groups[name][key] = groups[name][key].add(outcome, rejected=rej)

        if row.score is not None:
            put("band", band_of(row.score))
        put("stage", row.stage or "-")
        put("source", row.source)
        put("rule", row.rule_id or ("(screened out)" if outcome == "screened_out" else "-"))
        for rule_id in _signals(row, policy):
            put("signal", rule_id)
        handed_off = outcome not in ("screened_out", "unassigned")
        if handed_off and row.score is not None:
            scored.append((row.score, outcome == "converted"))
        if handed_off and was_rejected:
            for note in row.rejection_notes or ("",):
                rejections[reason_key(note)][row.stage or "-"] += 1
        if handed_off and outcome in LOST:
            code = lost_reason(row)
            lost[code] = lost[code].add(
                source=row.source, rule=row.rule_id or "-", stage=row.stage or "-"
            )
    costs = {
        source: SourceCost(
            source=source,
            leads=leads_per_source[source],
            cost_per_lead=cfg.cost_per_lead if (cfg := policy.source(source)) else None,
            opportunities=opps_per_source[source],
        )
        for source in sorted(leads_per_source)
    }
    stages = policy.qualification.stages
    min_stage = min((s.min_score for s in stages), default=None)
    return CalibrationReport(
        since=since,
        until=until,
        leads=n,
        outcomes=dict(sorted(outcomes.items())),
        by_band=_sorted(groups["band"]),
        by_stage=_sorted(groups["stage"]),
        by_source=_sorted(groups["source"]),
        by_rule=_sorted(groups["rule"]),
        by_signal=_sorted(groups["signal"]),
        rejections=_by_count(rejections),
        costs=costs,
        suggestion=suggest_threshold(scored, keep=keep, min_stage=min_stage),
        lost=dict(sorted(lost.items(), key=lambda kv: (-kv[1].leads, kv[0]))),
    )


def _by_count(rejections: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Reasons by how many rejections they explain (most first), each one's stages sorted."""
    return {
        reason: dict(sorted(by_stage.items()))
        for reason, by_stage in sorted(
            rejections.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])
        )
    }


def _signals(row: OutcomeRow, policy: Policy) -> list[str]:
    try:
        result = score(flatten_lead(row.lead), policy.qualification)
    except (TypeError, ValueError):  # a stored lead the current conditions cannot read
        return []
    return [r.rule_id for r in result.matched]


# --- text ------------------------------------------------------------------------------------


def _rate_table(title: str, rates: dict[str, Rate]) -> list[str]:
    if not rates:
        return ["", title, "  (no leads)"]
    width = max(len(title.split()[-1]), *(len(k) for k in rates))
    lines = [
        "",
        title,
        f"{'':{width}}  {'leads':>7} {'handoff':>7} {'won':>6} {'rate':>7} "
        f"{'rejected':>8} {'disq':>6}",
    ]
    for key, r in rates.items():
        lines.append(
            f"{key:{width}}  {r.leads:>7} {r.handed_off:>7} {r.converted:>6} "
            f"{r.conversion_rate:>7.1%} {r.rejected:>8} {r.disqualified:>6}"
        )
    return lines


def render_text(report: CalibrationReport) -> str:
    lines = [
        f"Calibration: {report.leads} leads received "
        f"{report.since.isoformat()} .. {report.until.isoformat()}",
        "Outcomes: " + ", ".join(f"{k} {v}" for k, v in report.outcomes.items()),
    ]
    lines += _rate_table("Conversion by score band", report.by_band)
    lines += _rate_table("Conversion by stage", report.by_stage)
    lines += _rate_table("Conversion by source", report.by_source)
    lines += _rate_table("Conversion by routing rule", report.by_rule)
    lines += _rate_table("Conversion by scoring signal", report.by_signal)
    lines += ["", "Rejected by sales, by reason (count per stage)"]
    if not report.rejections:
        lines.append("  (none)")
    for reason, by_stage in report.rejections.items():
        per = ", ".join(f"{stage} {count}" for stage, count in by_stage.items())
        lines.append(f"  {sum(by_stage.values()):>5}  {reason}  ({per})")
    lines += ["", "Lost by sales (disqualified, or rejected and not converted), by reason code"]
    if not report.lost:
        lines.append("  (none)")
    for code, group in report.lost.items():
        lines.append(f"  {group.leads:>5}  {code}")
        for title, pairs in (
            ("source", group.by_source),
            ("rule", group.by_rule),
            ("stage", group.by_stage),
        ):
            lines.append(f"         by {title}: " + ", ".join(f"{k} {n}" for k, n in pairs))
    lines += ["", "Cost per qualified opportunity (converted lead), by source"]
    for c in report.costs.values():
        cost = "no cost configured" if c.cost is None else f"cost {c.cost:.2f}"
        per = "-" if c.cost_per_opportunity is None else f"{c.cost_per_opportunity:.2f}"
        lines.append(
            f"  {c.source}: {c.leads} leads, {cost}, {c.opportunities} opportunities, "
            f"per opportunity {per}"
        )
    overall = report.as_dict()["cost_per_opportunity"]
    if overall is not None:
        lines.append(f"  overall: {overall:.2f} per opportunity")
    lines.append("")
    s = report.suggestion
    if s is None:
        lines.append("Suggested threshold: none (no conversions recorded yet)")
    else:
        lines.append(
            f"Suggested handoff threshold: score >= {s.threshold} keeps {s.conversions_kept} of "
            f"{s.conversions_now} conversions with {s.handoffs_at_threshold} handoffs instead of "
            f"{s.handoffs_now} ({s.wasted_now - s.wasted_at_threshold} wasted handoffs avoided)."
        )
        if s.current_min_stage_score is not None:
            lines.append(f"The policy's lowest stage starts at score {s.current_min_stage_score}.")
    return "\n".join(lines) + "\n"
