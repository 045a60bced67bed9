"""Intake's own metrics (registry injected; sources are bounded by the policy file)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


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
