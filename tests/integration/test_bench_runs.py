"""The benches still run (their numbers are read by people, not asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import (
    booking,
    chain_booking,
    continuity,
    dashboard_replay,
    dispatcher,
    footprint,
    pipeline,
)
from bench._report import PROCESSES, SERVICES
from shared.infra import Infra

pytestmark = pytest.mark.integration


async def test_the_chain_booking_bench_books_and_reports_a_row(infra: Infra) -> None:
    lines = await chain_booking.run(infra.redis_url, probe=2, series=[(2, 1, 1)])
    header, row = lines
    assert header.split()[:2] == ["locations", "plans"]
    locations, elsewhere, held = (int(x) for x in row.split()[:3])
    assert (locations, elsewhere) == (2, 1)
    assert held > 0  # the plan already at the probe location holds its visits


def test_the_booking_bench_books_one_plan_on_a_filled_calendar_bare_and_with_exceptions() -> None:
    assert len(booking.fill_up(plans=2, window=1, log=lambda line: None)) == 3
    summary, header, *rows = booking.repeat(runs=2, log=lambda line: None)
    assert "80% of the" in summary
    assert header.split()[:3] == ["scenario", "CPU", "p50"]
    assert [row.split()[0] for row in rows] == ["bare", "directory"]
    assert all(row.split()[7] == "12/12" for row in rows)  # the calendar keeps room for it


def test_the_continuity_bench_books_a_stream_per_location_with_this_checkouts_code() -> None:
    header, _, *rows = continuity.run([continuity.PROJECT_ROOT], plans=8)
    assert "one therapist" in header
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert [c[1] for c in cells] == ["beaverton", "brooklyn"]  # both demo locations
    assert all(c[2] == "8" and c[5].endswith("%") for c in cells)


async def test_the_dashboard_replay_bench_reports_a_row(infra: Infra) -> None:
    lines = await dashboard_replay.run(infra.kafka_bootstrap_servers, infra.redis_url, [30])
    header, row = lines
    assert header.split()[0] == "published"
    published, read = (int(x) for x in row.split()[:2])
    assert published == 30
    assert read >= 30  # the run's other tests share the broker


def test_the_pipeline_bench_processes_every_intake_and_tabulates_both_systems(
    tmp_path: Path,
) -> None:
    report = pipeline.run(pipeline.QUICK, workdir=tmp_path, log=lambda line: None)
    (stack,), bare = report.stacks, report.bare
    for figures in (stack, bare):
        assert figures.processed == figures.intakes == pipeline.QUICK.intakes
        assert set(figures.cpu_ms) == set(PROCESSES)  # the broker's pid was found
        assert figures.steady == round(pipeline.QUICK.latency_rate * pipeline.QUICK.latency_s)
        assert None not in (*figures.first_visit_ms, *figures.last_visit_ms)
        assert [p.sent for p in figures.api] == [40]  # 20 req/s for 2 s
    # this checkout counts its Redis round trips; the bare pipeline has no Redis
    assert all(stack.round_trips[name] is not None for name in SERVICES)
    # counted from outside, through a proxy per service, and by the counter, in one pass
    # whose counter window holds the proxy's. The proxy takes a new connection's set-up
    # commands as one (a share that moves with how many connections a short pass opens),
    # and a large pipeline that reaches it in more than one read as two when Redis answers
    # the first part before the rest arrives: so the two agree to within those, not exactly
    proxied = sum(v or 0.0 for v in stack.proxied_round_trips.values())
    counted = sum(v or 0.0 for v in stack.counted_beside_proxy.values())
    assert 0.4 * counted <= proxied <= 1.1 * counted
    assert proxied > 0
    assert set(bare.round_trips.values()) == {0.0}
    # the bare pipeline has the stack's shape
    assert (report.fanout.visits, report.fanout.reminders) == (
        round(stack.visits),
        round(stack.reminders),
    )
    assert bare.visits == report.fanout.visits
    assert report.fanout.plan_bytes == round(stack.sizes["plan.created"])
    header, _, *rows = report.table.splitlines()
    assert header.count("|") == 5  # figure, the stack, bare, their ratio
    labels = [row.split("|")[1].strip() for row in rows]
    assert "CPU ms per intake: broker" in labels
    assert "Redis round trips per intake: all" in labels
    assert "202 -> last visit.booked p50 ms" in labels


def test_the_dispatcher_bench_sends_the_whole_backlog_over_few_connections(
    tmp_path: Path,
) -> None:
    [figures] = dispatcher.run(
        [pipeline.PROJECT_ROOT], backlog=60, clients=12, concurrency=4, workdir=tmp_path
    )
    assert figures.messages == 60  # every one, each once, as the SMTP server took them
    assert 0 < figures.lag_p50_s <= figures.lag_p99_s
    assert figures.connections_per_1000 <= 1000 * 4 / 60  # at most one per concurrent send
    assert figures.round_trips_per_message > 0


def test_the_footprint_bench_tabulates_active_and_finished_courses_per_service(
    tmp_path: Path,
) -> None:
    [figures], report = footprint.run(
        [footprint.PROJECT_ROOT], intakes=3, finished=2, workdir=tmp_path, log=lambda line: None
    )
    assert (figures.intakes, figures.finished) == (3, 2)
    # every service that handles an intake keeps something of it
    for service in ("intake", "planner", "scheduler", "notifier"):
        keys, size = figures.per_intake(service)
        assert keys > 0 and size > 0, service
    # a finished course keeps less than an active one, whatever the code's retention
    assert 0 < figures.per_finished()[1] < figures.per_intake()[1]
    rows = {line.split("|")[1].strip(): line for line in report if line.startswith("|")}
    assert {"intake", "planner", "scheduler", "notifier", "dashboard", "shared"} <= set(rows)
    assert "100,000 active clients (GiB)" in rows and "retention" in rows
    families = [line.split("|")[2].strip() for line in report if line.startswith("| planner |")]
    assert any(f.startswith("`planner:") and "<id>" in f for f in families)
