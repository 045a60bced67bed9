"""Prometheus metrics shared by every service, on an injected registry.

Names follow `baton_<noun>_{total|seconds}`; labels are few and bounded (service, topic,
partition, outcome), never a lead, an email or free text.
"""

from __future__ import annotations

from importlib import metadata

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def build_version() -> str:
    """The installed `baton` distribution's version (`unknown` when run from a bare tree)."""
    try:
        return metadata.version("baton")
    except metadata.PackageNotFoundError:
        return "unknown"


def new_registry() -> CollectorRegistry:
    """A registry with the standard process, platform and GC collectors."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class CommonMetrics:
    """The plumbing metrics every service exports: events, dead letters, lag, outbox, HTTP."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        self.service = service
        self._build_info(registry, service)
        self.events_consumed = Counter(
            "baton_events_consumed_total",
            "Kafka events handled, by outcome (handled, duplicate, dead_lettered).",
            ["topic", "outcome"],
            registry=registry,
        )
        self.events_produced = Counter(
            "baton_events_produced_total",
            "Events published to Kafka by the outbox relay.",
            ["topic"],
            registry=registry,
        )
        self.consume_failures = Counter(
            "baton_event_handling_failures_total",
            "Failed attempts to handle an event (each retry counts).",
            ["topic", "kind"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "baton_events_dead_lettered_total",
            "Events sent to the dead-letter topic.",
            ["topic", "reason"],
            registry=registry,
        )
        self.handle_seconds = Histogram(
            "baton_event_handling_seconds",
            "Time to handle one consumed event, including its database transaction.",
            ["topic"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "baton_consumer_lag_messages",
            "Messages between the consumer position and the partition high watermark.",
            ["topic", "partition"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "baton_outbox_depth_messages",
            "Outbox rows not yet published to Kafka.",
            registry=registry,
        )
        self.outbox_age = Gauge(
            "baton_outbox_oldest_age_seconds",
            "Age of the oldest unpublished outbox row (0 when empty).",
            registry=registry,
        )
        self.relay_publish_seconds = Histogram(
            "baton_outbox_publish_seconds",
            "Time to publish one outbox batch to Kafka and mark it sent.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.relay_failures = Counter(
            "baton_outbox_publish_failures_total",
            "Outbox batches that could not be published (retried).",
            registry=registry,
        )
        self.http_requests = Counter(
            "baton_http_requests_total",
            "HTTP requests served, by route template and status code.",
            ["route", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "baton_http_request_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def _build_info(self, registry: CollectorRegistry, service: str) -> None:
        """`baton_build_info`, always 1: which service and release this process runs. It carries
        its own `service` label, so dashboards and rules need none added by the scrape setup."""
        build_info = Gauge(
            "baton_build_info",
            "Always 1: which service and release this process runs.",
            ["service", "version"],
            registry=registry,
        )
        build_info.labels(service, build_version()).set(1)


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
