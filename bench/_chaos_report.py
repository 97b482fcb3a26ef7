"""The chaos bench's table: every count of bench/_chaos_checks.py, and each service's
kills and restart-to-ready times."""

from __future__ import annotations

from collections.abc import Sequence

from bench._chaos_checks import Findings
from bench._chaos_kills import Restart
from bench._load import percentile
from bench._stack import SERVICES


def kills_by_service(restarts: Sequence[Restart]) -> dict[str, list[Restart]]:
    found: dict[str, list[Restart]] = {name: [] for name in SERVICES}
    for restart in restarts:
        found[restart.service].append(restart)
    return found


def table(f: Findings, restarts: Sequence[Restart], unanswered: int) -> str:
    lag = "n/a" if f.lag_p50_min is None else f"{f.lag_p50_min:.0f} / {f.lag_p99_min:.0f}"
    rows = [
        ("intakes accepted (202)", f.intakes_accepted),
        ("intakes not answered", unanswered),
        ("intakes lost (no submission or no plan decision)", f.intakes_lost),
        ("intakes twice (a second submission event or plan)", f.duplicate_intakes),
        ("plans created / declined", f"{f.plans_created} / {f.plans_declined}"),
        ("plans not wholly booked", f.plans_incomplete),
        ("visits booked / sequences waitlisted", f"{f.visits} / {f.waitlisted}"),
        ("duplicate bookings", f.duplicate_bookings),
        ("overlaps (therapist or room)", f.overlaps),
        (
            "notifications scheduled / due before the cut-off",
            f"{f.scheduled} / {f.due_before_cutoff}",
        ),
        (
            "sent / failed / suppressed / cancelled",
            f"{f.sent} / {f.failed} / {f.suppressed} / {f.cancelled}",
        ),
        ("due before the cut-off, no terminal event", f.missing_terminal),
        ("more than one terminal event", f.terminal_twice),
        ("failed outcome_unknown (a kill inside a send)", f.outcome_unknown),
        ("mails received", f.mails),
        ("duplicate mails", f.duplicate_messages),
        ("sent, not received", f.sent_not_received),
        ("received, neither sent nor outcome_unknown", f.received_unexplained),
        (
            "dead letters (all / not outcome_unknown)",
            f"{f.dead_letters} / {f.dead_letters_unexplained}",
        ),
        ("send lag p50 / p99, simulated minutes", lag),
        ("reminders received after their visit started", f.reminders_after_start),
    ]
    for name, of_one in kills_by_service(restarts).items():
        ready = [r.ready_s for r in of_one if r.ready_s is not None]
        timing = "n/a" if not ready else f"{percentile(ready, 50):.1f} / {max(ready):.1f}"
        value = f"{len(of_one)}, {len(of_one) - len(ready)}, {timing}"
        rows.append((f"{name}: kills, killed again before ready, ready p50 / max s", value))
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'check'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
    return "\n".join(lines)
