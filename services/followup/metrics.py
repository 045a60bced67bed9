"""Followup metrics: clocks, escalations, speed-to-lead, SLA outcomes, conversions (registry
injected). Labels come from the policy (team, tier, stage, reason codes), so they stay bounded."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

SPEED_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class FollowupMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._clocks(registry)
        self._leads(registry)
        self._activities(registry)

    def _clocks(self, registry: CollectorRegistry) -> None:
        """The SLA clocks and what they fire."""
        self.open_clocks = Gauge(
            "baton_sla_clocks_open", "SLA clocks currently running.", registry=registry
        )
        self.escalations = Counter(
            "baton_escalations_total",
            "Escalations fired (SLA breaches reaching that level), by level, action and team.",
            ["level", "action", "team"],
            registry=registry,
        )
        self.escalation_lateness = Histogram(
            "baton_escalation_lateness_seconds",
            "How long after its scheduled time an escalation was published to the outbox.",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )

    def _leads(self, registry: CollectorRegistry) -> None:
        """Per lead: speed to lead, handoffs, stage changes, conversions, SLA outcomes."""
        self.speed_to_lead = Histogram(
            "baton_speed_to_lead_seconds",
            "Time from assignment to first contact.",
            ["team", "tier"],
            buckets=SPEED_BUCKETS,
            registry=registry,
        )
        self.speed_to_lead_first = Histogram(
            "baton_speed_to_lead_first_assignment_seconds",
            "Time from a lead's first assignment to its first contact by anyone, once per lead "
            "(baton_speed_to_lead_seconds measures each assignment from its own start).",
            ["tier"],
            buckets=SPEED_BUCKETS,
            registry=registry,
        )
        self.conversions = Counter(
            "baton_conversions_total",
            "Leads converted (first converted activity), by the qualification stage they were "
            "handed off at; with the handoffs per stage this gives MQL and SQL conversion.",
            ["stage"],
            registry=registry,
        )
        self.handoffs = Counter(
            "baton_handoffs_total",
            "Leads handed to sales (their first assignment), by qualification stage.",
            ["stage"],
            registry=registry,
        )
        self.stage_changes = Counter(
            "baton_stage_changes_total",
            "Later assignments of a lead at another stage than its previous one "
            "(from_stage=mql, to_stage=sql: an MQL that became an SQL).",
            ["from_stage", "to_stage"],
            registry=registry,
        )
        self.sla = Counter(
            "baton_sla_outcomes_total",
            "First contacts inside (met) or after (breached) the window.",
            ["team", "tier", "outcome"],
            registry=registry,
        )

    def _activities(self, registry: CollectorRegistry) -> None:
        """Activities from sales tools, re-engagements, parked waits and completion."""
        self.activities = Counter(
            "baton_activities_total",
            "Activities recorded, by type and whether the lead was known.",
            ["type", "known"],
            registry=registry,
        )
        self.lost_reasons = Counter(
            "baton_lost_reasons_total",
            "Rejections and disqualifications by type and reason code (the policy's "
            "feedback.reasons, plus 'other').",
            ["type", "reason"],
            registry=registry,
        )
        self.activity_webhooks = Counter(
            "baton_activity_webhooks_total",
            "Activity webhooks from sales tools by source (configured name or 'unknown'), "
            "outcome (accepted/rejected) and HTTP status.",
            ["source", "outcome", "status"],
            registry=registry,
        )
        self.reengaged = Counter(
            "baton_reengagements_total",
            "Nurture leads handed back on their re-engagement date (to their owner, or to the "
            "router for a lead nurtured by policy).",
            registry=registry,
        )
        self.nurtured = Counter(
            "baton_nurture_scheduled_total",
            "Re-engagements scheduled for leads nurtured by policy (lead.nurtured).",
            registry=registry,
        )
        self.parked_waits = Counter(
            "baton_parked_waits_total",
            "Waiting clocks of parked leads (nobody eligible), by team and outcome: started, "
            "or escalated to the team's manager when the wait lapsed.",
            ["team", "outcome"],
            registry=registry,
        )
        self.activities_dead_lettered = Counter(
            "baton_activities_dead_lettered_total",
            "Activities for leads never assigned within the grace period, sent to leads.dlq.",
            registry=registry,
        )
        self.completion_ratio = Gauge(
            "baton_followup_completion_ratio",
            "Share of SLA windows that ended in the last 7 days and were touched in time "
            "(NaN when none ended); refreshed periodically, not per scrape.",
            registry=registry,
        )
        self.completion_ratio.set(float("nan"))
