"""The stack under SIGKILL chaos (bench/chaos.py, small): intakes posted while a random
service is killed every few seconds and restarted at once, on the simulated clock,
e-mail to a real SMTP server; nothing is lost, doubled or overlapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench._chaos_report import kills_by_service, table
from bench.chaos import Options, run

pytestmark = pytest.mark.e2e

# a kill inside a send is reported once, never repeated (services/notifier/attempts.py);
# a few kills of the notifier in a short run can each catch at most its sends in flight
OUTCOME_UNKNOWN_AT_MOST = 8


def test_nothing_is_lost_doubled_or_overlapping_under_kills(tmp_path: Path) -> None:
    # seed 4 kills the planner, scheduler, intake and notifier first, in that order
    options = Options(
        intakes=36,
        rate=1.5,
        kill_every_s=4.0,
        seed=4,
        sites=6,
        workdir=tmp_path,
        answer_within_s=60.0,
        settle_within_s=90.0,
    )
    result = run(options, log=lambda _: None)
    found = result.findings
    counts = table(found, result.restarts, len(result.unanswered))
    report = f"{counts}\nexamples: {found.examples}\nlogs: {tmp_path}"
    print(report)
    killed = {name for name, restarts in kills_by_service(result.restarts).items() if restarts}

    assert len(result.restarts) >= 3 and len(killed) >= 2, report
    assert result.unanswered == [], report
    assert found.intakes_accepted == options.intakes, report
    assert result.settled, f"{report}\nstill open: {result.still_open[:10]}"
    assert found.intakes_lost == 0, report
    assert found.duplicate_intakes == 0, report
    assert found.plans_incomplete == 0, report
    assert found.visits > 0, report
    assert found.duplicate_bookings == 0, report
    assert found.overlaps == 0, report
    assert found.sent > 0, report
    assert found.duplicate_messages == 0, report
    assert found.missing_terminal == 0, report
    assert found.terminal_twice == 0, report
    assert found.sent_not_received == 0, report
    assert found.received_unexplained == 0, report
    assert found.dead_letters_unexplained == 0, report
    assert found.outcome_unknown <= OUTCOME_UNKNOWN_AT_MOST, report
