"""The four services as separate processes, on a simulated clock, for the whole e2e run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import pytest
from aiokafka import AIOKafkaProducer

from shared.clock import parse_clock
from shared.infra import Infra
from shared.stack import Stack, free_ports, running_stack
from tests.conftest import DEMO_CHAIN
from tests.support import TopicLog

# 2027-03-08 is a Monday; the plan's visits cross the US DST change of 2027-03-14.
SIM_START = "2027-03-08T16:00:00Z"
SIM_SPEED = 3600  # one real second is one simulated hour


@pytest.fixture(scope="session")
def stack(
    infra: Infra, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    with running_stack(
        infra,
        config=DEMO_CHAIN,
        clock=f"sim:{SIM_START}@{SIM_SPEED}x",
        ports=free_ports(),
        extra_env={
            "CLINICFLOW_REDIS_NAMESPACE": namespace,
            "CLINICFLOW_ENV": "test",
            "NOTIFIER_OUTBOX_PATH": str(workdir / "outbox.jsonl"),
            "NOTIFIER_POLL_INTERVAL_S": "0.2",
            # the tests poll; the rate limit has tests of its own
            "API_RATE_LIMIT_PER_MINUTE": "60000",
            "API_RATE_LIMIT_BURST": "10000",
        },
        log_dir=workdir / "logs",
    ) as running:
        yield running


@pytest.fixture(scope="session")
async def topics(stack: Stack) -> AsyncIterator[TopicLog]:
    """Everything on the public topics since the stack started."""
    log = await TopicLog(stack.infra.kafka_bootstrap_servers).start()
    yield log
    await log.stop()


@pytest.fixture
async def producer(stack: Stack) -> AsyncIterator[AIOKafkaProducer]:
    """Publishes records as another service would (acks=all)."""
    sender = AIOKafkaProducer(bootstrap_servers=stack.infra.kafka_bootstrap_servers, acks="all")
    await sender.start()
    yield sender
    await sender.stop()


def sim_now(stack: Stack) -> datetime:
    """The deployment's shared clock, read the way every process reads it."""
    env = stack.environment
    return parse_clock(env["CLINICFLOW_CLOCK"], anchor=float(env["CLINICFLOW_CLOCK_ANCHOR"])).now()
