"""Router metrics (registry injected): decisions by outcome/team/tier and assignment latency."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "baton_routing_decisions_total",
            "Routing decisions by outcome (assigned, reassigned, merged, disqualified, unassigned).",
            ["outcome", "team", "tier"],
            registry=registry,
        )
        self.assignment_latency = Histogram(
            "baton_assignment_latency_seconds",
            "Time from intake receiving a lead to the router assigning it.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.policy_reloads = Counter(
            "baton_policy_reloads_total",
            "Policy reload attempts by result.",
            ["result"],
            registry=registry,
        )
        self.policy_info = Gauge(
            "baton_policy_loaded_timestamp_seconds",
            "When the live routing policy was loaded.",
            registry=registry,
        )
