"""The public topics carry the registry's retention and cleanup policy on the broker.

Read back with DescribeConfigs. The embedded broker (Tansu) answers it with the
configs a topic was created with (it reports no broker defaults and closes the
connection when the request names the configs it wants), so the request asks
for all of a topic's configs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.infra import Infra
from shared.kafka import ensure_topics
from shared.topics import PUBLIC_TOPICS, TopicSpec
from shared.topics_cli import TopicState, report

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(infra: Infra) -> AsyncIterator[AIOKafkaAdminClient]:
    await ensure_topics(infra.kafka_bootstrap_servers)
    client = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap_servers)
    await client.start()
    yield client
    await client.close()


async def topic_configs(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    configs: dict[str, str] = {}
    for response in responses:
        for error_code, error_message, _type, name, entries in response.resources:
            assert error_code == 0, f"{name}: {error_message}"
            configs.update({entry[0]: entry[1] for entry in entries})
    return configs


@pytest.mark.parametrize("spec", PUBLIC_TOPICS, ids=lambda spec: spec.name)
async def test_a_created_topic_has_the_registry_retention_and_cleanup_policy(
    admin: AIOKafkaAdminClient, spec: TopicSpec
) -> None:
    configs = await topic_configs(admin, spec.name)
    assert configs.get("retention.ms") == str(spec.retention_ms), configs
    assert configs.get("cleanup.policy") == spec.cleanup_policy, configs


def test_every_public_topic_is_an_event_log_and_the_report_says_so() -> None:
    # compaction keeps only the latest record per key: a client's earlier events would go
    assert {spec.cleanup_policy for spec in PUBLIC_TOPICS} == {"delete"}
    for line in report([TopicState(spec, spec.partitions) for spec in PUBLIC_TOPICS]):
        assert " cleanup=delete " in line
