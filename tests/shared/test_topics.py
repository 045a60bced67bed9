"""Topics Baton creates on the real broker: a bounded retention for topics with contact data."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import ensure_topics
from shared.settings import Settings
from tests.conftest import delete_topics, unique_topics

pytestmark = pytest.mark.integration


async def _retention_ms(settings: Settings, topic: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": None})]
        )
    finally:
        await admin.close()
    [(_, _, _, _, entries)] = response.resources
    [value] = [e[1] for e in entries if e[0] == "retention.ms"]
    return str(value)


async def test_topics_with_contact_data_get_the_configured_retention(migrated: Settings) -> None:
    topics = unique_topics()
    settings = migrated.model_copy(
        update={"topics": topics, "topic_partitions": 1, "topic_retention_hours": 36}
    )
    await ensure_topics(settings)
    try:
        for name in (
            topics.leads_received,
            topics.leads_assigned,
            topics.leads_activity,
            topics.leads_escalated,
            topics.leads_dlq,
        ):
            assert await _retention_ms(settings, name) == str(36 * 3600 * 1000), name
        # ids only: the broker's default (7 days on this broker)
        assert await _retention_ms(settings, topics.contacts_erased) == str(7 * 24 * 3600 * 1000)
    finally:
        await delete_topics(settings, topics.all())
