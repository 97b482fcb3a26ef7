"""The chain booking bench still runs (its numbers are read by people, not asserted)."""

from __future__ import annotations

import pytest

from bench import chain_booking, dashboard_replay
from shared.infra import Infra

pytestmark = pytest.mark.integration


async def test_the_chain_booking_bench_books_and_reports_a_row(infra: Infra) -> None:
    lines = await chain_booking.run(infra.redis_url, probe=2, series=[(2, 1, 1)])
    header, row = lines
    assert header.split()[:2] == ["locations", "plans"]
    locations, elsewhere, held = (int(x) for x in row.split()[:3])
    assert (locations, elsewhere) == (2, 1)
    assert held > 0  # the plan already at the probe location holds its visits


async def test_the_dashboard_replay_bench_reports_a_row(infra: Infra) -> None:
    lines = await dashboard_replay.run(infra.kafka_bootstrap_servers, infra.redis_url, [30])
    header, row = lines
    assert header.split()[0] == "published"
    published, read = (int(x) for x in row.split()[:2])
    assert published == 30
    assert read >= 30  # the run's other tests share the broker
