"""Intake's own metrics (registry injected; sources are bounded by the policy file).

The `source` label is a configured source name or `unknown` (a 404), never the raw path
segment, so a scanner cannot grow the series count.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.metrics import LATENCY_BUCKETS


class IntakeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.webhooks = Counter(
            "baton_webhooks_total",
            "Webhooks received, by configured source and HTTP status.",
            ["source", "status"],
            registry=registry,
        )
        self.leads_accepted = Counter(
            "baton_leads_accepted_total",
            "Leads made durable (new, not idempotent replays), by source and channel.",
            ["source", "channel"],
            registry=registry,
        )
        self.spam = Counter(
            "baton_webhooks_spam_total",
            "Browser-posted forms dropped because the honeypot field was filled.",
            ["source"],
            registry=registry,
        )
        self.disconnects = Counter(
            "baton_webhooks_disconnected_total",
            "Webhooks whose sender hung up before the body was read (nothing stored).",
            ["source"],
            registry=registry,
        )
        self.commits = Counter(
            "baton_intake_commits_total",
            "Group-commit transactions that made leads durable (leads accepted / this = the "
            "mean batch size).",
            registry=registry,
        )
        self.request_seconds = Histogram(
            "baton_intake_request_seconds",
            "Webhook handling time by source, from the request to the 202 (or the error); "
            "includes reading the body and the commit that makes the lead durable.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
