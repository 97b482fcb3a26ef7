"""What the pipeline bench reads from the processes it measures: CPU time from
``/proc/<pid>/stat``, the broker's pid, and counters from a service's ``/metrics``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")
ROUND_TRIPS = re.compile(r"^clinicflow_redis_round_trips_total\{[^}]*\}\s+([0-9.eE+]+)$", re.M)


def cpu_ms(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far, in milliseconds (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # the command name (field 2) is in parentheses and may hold spaces
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) * TICK_MS


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_ms(pid) for name, pid in pids.items()}


def broker_pid(bootstrap: str) -> int | None:
    """The pid of the embedded Tansu broker listening on ``bootstrap``'s port (shared/infra.py
    starts it as ``<tansu> broker --listener-url tcp://127.0.0.1:<port> ...``), if any."""
    listener = f"tcp://{bootstrap}"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv]
        if "--listener-url" in words and words[words.index("--listener-url") + 1] == listener:
            return int(entry.name)
    return None


def redis_round_trips(url: str) -> float | None:
    """The service's ``clinicflow_redis_round_trips_total`` (summed over its samples), or
    ``None`` when its ``/metrics`` has no such counter (code from before it existed)."""
    text = httpx.get(f"{url}/metrics", timeout=5.0).text
    found = ROUND_TRIPS.findall(text)
    return sum(float(value) for value in found) if found else None
