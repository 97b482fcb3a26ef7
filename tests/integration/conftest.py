"""Fixtures for tests of one service against the run's broker and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.infra import Infra
from tests.support import TopicLog


@pytest.fixture(scope="session")
async def topics(infra: Infra) -> AsyncIterator[TopicLog]:
    """Everything on the run broker's public topics."""
    log = await TopicLog(infra.kafka_bootstrap_servers).start()
    yield log
    await log.stop()
