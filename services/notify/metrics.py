"""Notify metrics (registry injected): deliveries, attempt durations, backlog per endpoint.

`endpoint` is a configured webhook endpoint's name or "slack"/"email": a bounded set from
configuration, never a URL, an address or a person.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OUTCOMES = ("delivered", "retry", "gone", "rejected", "dead")


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "baton_notify_deliveries_total",
            "Delivery attempts by channel and outcome (delivered, retry, gone, rejected, dead: "
            "a failed attempt that used up the retry schedule, or a rejected message).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.attempt_seconds = Histogram(
            "baton_notify_attempt_seconds",
            "Duration of one delivery attempt, answer or not.",
            ["channel"],
            buckets=ATTEMPT_BUCKETS,
            registry=registry,
        )
        self.pending = Gauge(
            "baton_notify_pending_messages",
            "Messages waiting for delivery (due or scheduled), per endpoint; refreshed "
            "periodically.",
            ["endpoint"],
            registry=registry,
        )
        self.oldest_pending = Gauge(
            "baton_notify_oldest_pending_seconds",
            "Age of the oldest message still waiting for delivery, per endpoint (0: none).",
            ["endpoint"],
            registry=registry,
        )
        self.endpoint_failing = Gauge(
            "baton_notify_endpoint_failing",
            "1 while the endpoint's last attempt failed (or it is disabled), else 0.",
            ["endpoint"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "baton_notify_dead_letters_total",
            "Messages given up on (retry schedule used up, or rejected by the remote side).",
            ["channel"],
            registry=registry,
        )
