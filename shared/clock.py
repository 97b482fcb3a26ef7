"""The shared clock: every service takes "now" from ``CLINICFLOW_CLOCK``.

``system`` is the wall clock. ``sim:<RFC 3339 start>@<speed>x`` starts at
``start`` and runs ``speed`` times faster than real time from one *anchor*: the
real instant the simulation began. ``clinicflow up`` fixes the anchor at its own
start and hands it to every process, so all clocks of a deployment agree.
"""

from __future__ import annotations

import asyncio
import re
import time as _time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

_SIM = re.compile(r"^sim:(?P<start>[^@]+)@(?P<speed>[0-9]+(?:\.[0-9]+)?)x$")


class ClockSpecError(ValueError):
    """A ``CLINICFLOW_CLOCK`` value that cannot be understood."""


class Clock(Protocol):
    def now(self) -> datetime: ...

    def real_seconds_until(self, instant: datetime) -> float: ...


@dataclass(frozen=True)
class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds_until(self, instant: datetime) -> float:
        return max(0.0, (instant - self.now()).total_seconds())


@dataclass(frozen=True)
class SimulatedClock:
    start: datetime
    speed: float
    anchor: float  # real epoch seconds at which the simulation was at ``start``

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(_time.time() - self.anchor) * self.speed)

    def real_seconds_until(self, instant: datetime) -> float:
        return max(0.0, (instant - self.now()).total_seconds() / self.speed)


def parse_clock(spec: str, *, anchor: float | None = None) -> Clock:
    """Build the clock named by ``spec``; ``anchor`` defaults to this moment."""
    if spec == "system":
        return SystemClock()
    match = _SIM.match(spec)
    if match is None:
        raise ClockSpecError(
            f"CLINICFLOW_CLOCK={spec!r}: expected 'system' or 'sim:<RFC 3339 start>@<speed>x'"
        )
    try:
        start = datetime.fromisoformat(match["start"].replace("Z", "+00:00"))
    except ValueError as exc:
        raise ClockSpecError(f"CLINICFLOW_CLOCK={spec!r}: bad start time: {exc}") from exc
    if start.tzinfo is None:
        raise ClockSpecError(f"CLINICFLOW_CLOCK={spec!r}: start needs a UTC offset or Z")
    speed = float(match["speed"])
    if speed <= 0:
        raise ClockSpecError(f"CLINICFLOW_CLOCK={spec!r}: speed must be positive")
    return SimulatedClock(
        start=start.astimezone(UTC),
        speed=speed,
        anchor=_time.time() if anchor is None else anchor,
    )


async def sleep_until(clock: Clock, instant: datetime, *, at_most: float) -> None:
    """Sleep until ``instant`` on ``clock``, but never longer than ``at_most`` real seconds."""
    await asyncio.sleep(min(at_most, clock.real_seconds_until(instant)))
