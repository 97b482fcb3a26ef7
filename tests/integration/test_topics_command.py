"""``clinicflow topics`` against the run's broker: every public topic as declared."""

from __future__ import annotations

import asyncio

import pytest

from shared.infra import Infra
from shared.topics import PUBLIC_TOPICS
from shared.topics_cli import TopicState, report, run

pytestmark = pytest.mark.integration


async def test_topics_describes_the_registry_on_the_broker(infra: Infra) -> None:
    status, lines = await run(infra.kafka_bootstrap_servers, create=True)
    assert status == 0, lines
    for spec, line in zip(PUBLIC_TOPICS, lines, strict=True):
        assert line.startswith(spec.name)
        assert f"partitions={spec.partitions}/{spec.partitions}" in line
        assert all(t in line for t in spec.event_types)
        assert "<-" not in line


def test_a_missing_or_smaller_topic_is_named_and_fails_the_check() -> None:
    visits, plans = PUBLIC_TOPICS[2], PUBLIC_TOPICS[1]
    lines = report([TopicState(visits, None), TopicState(plans, 2)])
    assert lines[0].endswith("<- missing (clinicflow topics --create)")
    assert lines[1].endswith(f"<- 2 partitions, the registry wants {plans.partitions}")


async def test_an_unreachable_broker_is_an_error_not_a_report() -> None:
    from shared.cli import main

    status = await asyncio.to_thread(main, ["topics", "--bootstrap", "127.0.0.1:1"])
    assert status == 2
