"""The calibration report as Prometheus gauges on an injected registry.

Labels stay bounded: score bands (a dozen), stages, sources and rule ids come from the policy;
free-text rejection reasons are never labels (only counted per stage).
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry, Gauge

from ops.calibration.report import CalibrationReport


class CalibrationGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.conversion = Gauge(
            "baton_calibration_conversion_ratio",
            "Share of leads that converted, by dimension (band, stage, source, rule, signal).",
            ["dimension", "group"],
            registry=registry,
        )
        self.leads = Gauge(
            "baton_calibration_leads",
            "Leads in the calibration period, by dimension and group.",
            ["dimension", "group"],
            registry=registry,
        )
        self.rejected = Gauge(
            "baton_calibration_rejected_leads",
            "Handed-off leads sales rejected in the period, by stage.",
            ["stage"],
            registry=registry,
        )
        self.cost_per_opportunity = Gauge(
            "baton_calibration_cost_per_opportunity",
            "Lead cost per converted lead, by source (sources with a cost_per_lead only).",
            ["source"],
            registry=registry,
        )
        self.threshold = Gauge(
            "baton_calibration_suggested_threshold_score",
            "Highest handoff score threshold that keeps the period's conversions.",
            registry=registry,
        )
        self.handoffs = Gauge(
            "baton_calibration_handoffs",
            "Handoffs in the period, now and had the suggested threshold applied.",
            ["at"],
            registry=registry,
        )
        self.wasted = Gauge(
            "baton_calibration_wasted_handoffs",
            "Handoffs that did not convert, now and had the suggested threshold applied.",
            ["at"],
            registry=registry,
        )

    def update(self, report: CalibrationReport) -> None:
        """Replace every value with the report's (groups that vanished disappear)."""
        for gauge in (self.conversion, self.leads, self.rejected, self.cost_per_opportunity):
            gauge.clear()
        for dimension, rates in report.dimensions().items():
            for group, rate in rates.items():
                self.conversion.labels(dimension, group).set(rate.conversion_rate)
                self.leads.labels(dimension, group).set(rate.leads)
        per_stage: dict[str, int] = defaultdict(int)
        for by_stage in report.rejections.values():
            for stage, count in by_stage.items():
                per_stage[stage] += count
        for stage, count in per_stage.items():
            self.rejected.labels(stage).set(count)
        for source, cost in report.costs.items():
            if cost.cost_per_opportunity is not None:
                self.cost_per_opportunity.labels(source).set(cost.cost_per_opportunity)
        s = report.suggestion
        if s is not None:
            self.threshold.set(s.threshold)
            self.handoffs.labels("current").set(s.handoffs_now)
            self.handoffs.labels("suggested").set(s.handoffs_at_threshold)
            self.wasted.labels("current").set(s.wasted_now)
            self.wasted.labels("suggested").set(s.wasted_at_threshold)


def calibration_gauges(report: CalibrationReport, registry: CollectorRegistry) -> CalibrationGauges:
    """Register the calibration gauges on ``registry`` and set them from ``report``."""
    gauges = CalibrationGauges(registry)
    gauges.update(report)
    return gauges
