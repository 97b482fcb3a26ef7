"""The pipeline bench's Markdown table: one column per system, and the last stack's
figures divided by the bare pipeline's."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bench._load import percentile
from bench._measure import Figures

PROCESSES = ("intake", "planner", "scheduler", "notifier", "broker")
SERVICES = ("intake", "planner", "scheduler", "notifier")
Cell = float | None


def _number(value: Cell, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(stack: Cell, bare: Cell) -> str:
    if stack is None or bare is None or bare == 0:
        return "-"
    return f"{stack / bare:,.3g}x"


def _total(values: Mapping[str, float | None], names: tuple[str, ...]) -> Cell:
    found = [values.get(name) for name in names]
    return None if any(v is None for v in found) else sum(v or 0.0 for v in found)


def rows(figures: Figures) -> list[tuple[str, Cell, int]]:
    """(label, value, digits) of every figure of one system, in table order."""
    table: list[tuple[str, Cell, int]] = [
        (f"intakes processed per second ({figures.in_flight} in flight)", figures.per_second, 1),
        ("intakes fully processed (of N)", float(figures.processed), 0),
    ]
    for name in PROCESSES:
        table.append((f"CPU ms per intake: {name}", figures.cpu_ms.get(name), 1))
    table.append(("CPU ms per intake: all processes", _total(figures.cpu_ms, PROCESSES), 1))
    for name in SERVICES:
        table.append((f"Redis round trips per intake: {name}", figures.round_trips.get(name), 1))
    table.append(("Redis round trips per intake: all", _total(figures.round_trips, SERVICES), 1))
    proxied = figures.proxied_round_trips
    for name in SERVICES:
        table.append((f"... through a proxy: {name}", proxied.get(name), 1))
    table.append(("... through a proxy: all", _total(proxied, SERVICES), 1))
    beside = _total(figures.counted_beside_proxy, SERVICES)
    table.append(("... the counter in that pass: all", beside, 1))
    p50, p99 = figures.first_visit_ms
    table += [("202 -> first visit.booked p50 ms", p50, 0), ("... p99 ms", p99, 0)]
    p50, p99 = figures.last_visit_ms
    table += [("202 -> last visit.booked p50 ms", p50, 0), ("... p99 ms", p99, 0)]
    p50, p99 = figures.last_reminder_ms
    table += [("202 -> last notification.scheduled p50 ms", p50, 0), ("... p99 ms", p99, 0)]
    for passed in figures.api:
        rate = f"{passed.rate:g} req/s"
        table += [
            (f"intake API at {rate}: p50 ms", percentile(passed.latencies_ms, 50), 1),
            (f"intake API at {rate}: p99 ms", percentile(passed.latencies_ms, 99), 1),
            (f"intake API at {rate}: errors (of {passed.sent})", float(passed.errors), 0),
        ]
    table += [
        ("visit.booked per intake", figures.visits, 1),
        ("notification.scheduled or .suppressed per intake", figures.reminders, 1),
    ]
    return table


def markdown(systems: list[Figures], bare: Figures, heading: Callable[[Figures], str]) -> str:
    """The table: a column per system, then the last stack divided by the bare pipeline."""
    columns = [*systems, bare]
    header = ["figure", *(heading(f) for f in columns), f"{systems[-1].label} / bare"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    tables = [rows(f) for f in columns]
    for index, (label, _, digits) in enumerate(tables[-1]):
        cells = [_number(t[index][1], digits) if index < len(t) else "-" for t in tables]
        ratio = _ratio(tables[-2][index][1], tables[-1][index][1])
        lines.append("| " + " | ".join([label, *cells, ratio]) + " |")
    return "\n".join(lines)
