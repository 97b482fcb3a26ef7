"""The local infrastructure launcher: reach what is configured, start what is missing,
stop only what it started."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.infra import Infra, free_port, kafka_answers, local_infra, redis_answers

pytestmark = pytest.mark.integration


def test_configured_services_are_used_as_they_are(infra: Infra, tmp_path: Path) -> None:
    env = infra.environment()
    with local_infra(workdir=tmp_path, env=env) as reached:
        assert reached.kafka_bootstrap_servers == infra.kafka_bootstrap_servers
        assert reached.redis_url == infra.redis_url
        assert not reached.embedded_kafka and not reached.embedded_redis
    # nothing it did not start was stopped
    assert kafka_answers(infra.kafka_bootstrap_servers)
    assert redis_answers(infra.redis_url)


def test_missing_services_are_started_and_stopped_again(tmp_path: Path) -> None:
    unreachable_redis = f"redis://127.0.0.1:{free_port()}/0"
    with local_infra(workdir=tmp_path, env={}, local_redis_url=unreachable_redis) as started:
        assert started.embedded_kafka and started.embedded_redis
        assert kafka_answers(started.kafka_bootstrap_servers)
        assert redis_answers(started.redis_url)
    assert not redis_answers(started.redis_url)
    assert not kafka_answers(started.kafka_bootstrap_servers)
