"""Router metrics (registry injected): decisions by outcome/team/tier, scoring, assignment
latency, and the eligible reps per team an alert watches (a team with none strands its leads).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS

# received -> assigned includes Kafka and the outbox hops, so it reaches into seconds.
ASSIGNMENT_BUCKETS = (*LATENCY_BUCKETS, 30.0, 60.0, 300.0)


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "baton_routing_decisions_total",
            "Routing decisions by outcome (assigned, reassigned, merged, disqualified, "
            "unassigned, reassign_failed, parked: a lead taken from its owner, rejection or "
            "absence, that nobody else could take, erased: received before its contact's "
            "erasure), "
            "team and tier.",
            ["outcome", "team", "tier"],
            registry=registry,
        )
        self.scored = Counter(
            "baton_leads_scored_total",
            "Leads scored against the qualification definition, by resulting team and tier.",
            ["team", "tier"],
            registry=registry,
        )
        self.assignment_latency = Histogram(
            "baton_assignment_latency_seconds",
            "Time from intake receiving a lead to the router assigning it (first assignment).",
            buckets=ASSIGNMENT_BUCKETS,
            registry=registry,
        )
        self.eligible_reps = Gauge(
            "baton_team_eligible_reps",
            "Reps of a team who can take a new lead (active, not out of office, under capacity).",
            ["team"],
            registry=registry,
        )
        self.on_duty_reps = Gauge(
            "baton_team_on_duty_reps",
            "Eligible reps of a team who are inside their working hours right now.",
            ["team"],
            registry=registry,
        )
        self.policy_reloads = Counter(
            "baton_policy_reloads_total",
            "Policy reload attempts by result.",
            ["result"],
            registry=registry,
        )
        self.policy_loaded = Gauge(
            "baton_policy_loaded_timestamp_seconds",
            "When the live routing policy was loaded.",
            registry=registry,
        )
        self.policy_info = Gauge(
            "baton_policy_info",
            "Always 1, labelled with the version id of the policy this process decides with: "
            "replicas deciding under different versions show as more than one series.",
            ["version"],
            registry=registry,
        )
        self.leads_decided = Counter(
            "baton_leads_decided_total",
            "Leads decided once each (merged touches aside) by outcome, qualification stage, "
            "channel and source: the share of qualified leads per channel and source.",
            ["outcome", "stage", "channel", "source"],
            registry=registry,
        )
        self._availability(registry)

    def _availability(self, registry: CollectorRegistry) -> None:
        """Rep pauses, pending reassignments and the capacity reconcile."""
        self.rep_pauses = Counter(
            "baton_rep_pauses_total",
            "Reps paused for new leads, by reason (missed_slas: the team's "
            "pause_after_missed_slas in a row).",
            ["reason"],
            registry=registry,
        )
        self.rep_resumes = Counter(
            "baton_rep_resumes_total",
            "Paused reps taking new leads again, by who lifted the pause (activity, manager).",
            ["by"],
            registry=registry,
        )
        self.pending_reassignments = Gauge(
            "baton_reassignments_pending",
            "Reassignments that found nobody and wait for the ticker's retry (escalations "
            "still with their owner, and leads parked after a rejection or an absence).",
            registry=registry,
        )
        self.load_corrections = Counter(
            "baton_rep_load_corrections_total",
            "Rep open-lead loads the periodic reconcile found drifted from the lead rows and "
            "rewrote (each should be explained: a non-zero rate is a bug).",
            registry=registry,
        )
        self.parked = Gauge(
            "baton_leads_parked",
            "Leads waiting for an eligible rep (routed as soon as one is available).",
            registry=registry,
        )

    def record_policy(self, version_id: str) -> None:
        """The live policy's load time and version: one `baton_policy_info` series at a time."""
        self.policy_loaded.set(time.time())
        self.policy_info.clear()
        self.policy_info.labels(version_id).set(1)
