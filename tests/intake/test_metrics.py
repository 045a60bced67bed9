"""Intake's metrics as Prometheus scrapes them from /metrics."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.intake.conftest import (
    JSON,
    Intake,
    chat_payload,
    standard_headers,
    unique_email,
    website_form,
)

pytestmark = pytest.mark.integration


async def _samples(intake: Intake) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await intake.client.get("/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_webhook_counts_channel_mix_and_latency(intake: Intake) -> None:
    secret = intake.secrets["BATON_SECRET_CHAT_WIDGET"]
    body = json.dumps(chat_payload(unique_email("brightpath.io"))).encode()
    headers = standard_headers(secret, body)
    assert (await intake.post("chat-widget", body, JSON, headers)).status_code == 202
    assert (await intake.post("chat-widget", body, JSON, headers)).status_code == 202  # replay
    assert (await intake.post("chat-widget", body, JSON)).status_code == 401
    for _ in range(2):
        assert (await intake.website(website_form(unique_email()))).status_code == 202
    spam = website_form(unique_email(), website_url="http://spam.example")
    assert (await intake.website(spam)).status_code == 202
    assert (await intake.post("wp-json-scanner", b"{}", JSON)).status_code == 404

    m = await _samples(intake)

    def webhooks(source: str, status: str) -> float:
        return m.get(("baton_webhooks_total", (("source", source), ("status", status))), 0.0)

    def accepted(source: str, channel: str) -> float:
        key = ("baton_leads_accepted_total", (("channel", channel), ("source", source)))
        return m.get(key, 0.0)

    assert webhooks("chat-widget", "202") == 2
    assert webhooks("chat-widget", "401") == 1
    assert webhooks("website-demo", "202") == 3
    assert webhooks("unknown", "404") == 1  # the path segment never becomes a label
    assert not any("wp-json-scanner" in str(labels) for _, labels in m)
    # channel mix: new durable leads only (no replays, no spam)
    assert accepted("chat-widget", "chat") == 1
    assert accepted("website-demo", "form") == 2
    assert m[("baton_webhooks_spam_total", (("source", "website-demo"),))] == 1
    # latency histogram per source: every request observed, errors included
    count = "baton_intake_request_seconds_count"
    assert m[(count, (("source", "chat-widget"),))] == 3
    assert m[(count, (("source", "website-demo"),))] == 3
    assert m[(count, (("source", "unknown"),))] == 1
    assert m[("baton_intake_request_seconds_sum", (("source", "chat-widget"),))] > 0
    inf = ("baton_intake_request_seconds_bucket", (("le", "+Inf"), ("source", "chat-widget")))
    assert m[inf] == 3
