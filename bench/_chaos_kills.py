"""The chaos itself: a thread that SIGKILLs a random service every few seconds and
starts it again at once, as a supervisor would, without waiting for it; beside each
restart a watcher polls the new process's ``/readyz`` to time its way back."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from shared.stack import Stack, kill_and_start

READY_WITHIN_S = 120.0  # a watcher gives up on a restart after this long


@dataclass
class Restart:
    service: str
    killed_at: float  # epoch seconds
    ready_s: float | None = None  # None: killed again (or never ready) before it answered


class Chaos:
    def __init__(self, stack: Stack, services: Sequence[str], *, every_s: float, seed: int) -> None:
        self.stack = stack
        self.services = list(services)
        self.every_s = every_s
        self.restarts: list[Restart] = []
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self._watchers: list[threading.Thread] = []

    def start(self) -> Chaos:
        self._thread.start()
        return self

    def stop(self) -> None:
        """No more kills; the watchers of the last restarts go on until they are timed."""
        self._stop.set()
        self._thread.join()

    def join_watchers(self, *, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        for watcher in self._watchers:
            watcher.join(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            name = self._rng.choice(self.services)
            restart = Restart(name, time.time())
            proc = kill_and_start(self.stack, name)
            self.restarts.append(restart)
            watcher = threading.Thread(
                target=self._watch, args=(restart, proc, time.monotonic()), daemon=True
            )
            watcher.start()
            self._watchers.append(watcher)

    def _watch(self, restart: Restart, proc: subprocess.Popen[bytes], started: float) -> None:
        url = f"{self.stack.urls[restart.service]}/readyz"
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() - started < READY_WITHIN_S:
                if proc.poll() is not None:  # killed again before it was ready
                    return
                try:
                    if http.get(url).status_code == 200:
                        restart.ready_s = time.monotonic() - started
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
