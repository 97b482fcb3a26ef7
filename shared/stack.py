"""Starts the four services and the ops dashboard as separate processes against
one broker and Redis, all on one clock anchor, and waits until every one is ready. Used by
``clinicflow up``, ``clinicflow demo`` and the end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shared.infra import Infra, InfraError, free_port
from shared.kafka import ensure_topics

SERVICE_PORTS: dict[str, int] = {
    "intake": 8001,
    "planner": 8002,
    "scheduler": 8003,
    "notifier": 8004,
    "dashboard": 8000,
}
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    infra: Infra
    urls: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]
    environment: dict[str, str] = field(default_factory=dict)

    def dead(self) -> list[str]:
        return [name for name, proc in self.processes.items() if proc.poll() is not None]

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return "(output not captured)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stack_environment(
    infra: Infra,
    *,
    config: Path,
    clock: str,
    ports: Mapping[str, int],
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment every service process gets: one broker, one Redis, one clock anchor."""
    env = {
        **os.environ,
        **infra.environment(),
        "CLINICFLOW_CHAIN_CONFIG": str(config),
        "CLINICFLOW_CLOCK": clock,
        "CLINICFLOW_CLOCK_ANCHOR": repr(time.time()),
        "PYTHONUNBUFFERED": "1",
    }
    env.update({f"{name.upper()}_PORT": str(port) for name, port in ports.items()})
    if "scheduler" in ports:  # messages link to this stack's services, wherever they listen
        scheduler = f"http://127.0.0.1:{ports['scheduler']}/v1"
        env["NOTIFIER_CONFIRM_URL_TEMPLATE"] = f"{scheduler}/visits/{{visit_id}}.ics?sig={{sig}}"
        env["NOTIFIER_OFFER_URL_TEMPLATE"] = (
            f"{scheduler}/waitlist-offers/{{offer_id}}/{{action}}?sig={{sig}}"
        )
    if "notifier" in ports:
        env["NOTIFIER_CHECKIN_URL_TEMPLATE"] = (
            f"http://127.0.0.1:{ports['notifier']}/v1/checkins/{{notification_id}}?sig={{sig}}"
        )
    watched = [name for name in ports if name != "dashboard"]
    env["DASHBOARD_SERVICES"] = ",".join(
        f"{name}=http://127.0.0.1:{ports[name]}" for name in watched
    )
    env.update(extra or {})
    return env


@contextmanager
def running_stack(
    infra: Infra,
    *,
    config: Path,
    clock: str = "system",
    ports: Mapping[str, int] | None = None,
    extra_env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    ready_within_s: float = 90.0,
) -> Iterator[Stack]:
    """Start every service as its own process; stop them all on exit."""
    chosen = dict(ports) if ports is not None else dict(SERVICE_PORTS)
    env = stack_environment(infra, config=config, clock=clock, ports=chosen, extra=extra_env)
    asyncio.run(ensure_topics(infra.kafka_bootstrap_servers))
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    try:
        for name in chosen:
            processes[name], log = _spawn(name, env, log_dir)
            if log is not None:
                logs[name] = log
        urls = {name: f"http://127.0.0.1:{port}" for name, port in chosen.items()}
        stack = Stack(infra=infra, urls=urls, processes=processes, logs=logs, environment=env)
        wait_until_ready(stack, deadline_s=ready_within_s)
        yield stack
    finally:
        stop_processes(processes)


def _spawn(
    name: str, env: dict[str, str], log_dir: Path | None
) -> tuple[subprocess.Popen[bytes], Path | None]:
    log = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{name}.log"
    sink = None if log is None else log.open("ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=None if sink is None else subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches `clinicflow up`, which stops us in order
        )
    finally:
        if sink is not None:
            sink.close()
    return proc, log


def restart(stack: Stack, name: str, *, ready_within_s: float = 60.0) -> None:
    """Stop one service and start it again with the same environment (a restart)."""
    stop_processes({name: stack.processes[name]})
    log_dir = stack.logs[name].parent if name in stack.logs else None
    stack.processes[name], _ = _spawn(name, stack.environment, log_dir)
    wait_until_ready(
        Stack(stack.infra, {name: stack.urls[name]}, {name: stack.processes[name]}, stack.logs),
        deadline_s=ready_within_s,
    )


def wait_until_ready(stack: Stack, *, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    pending = dict(stack.urls)
    with httpx.Client(timeout=2.0) as http:
        while pending:
            for dead in stack.dead():
                raise InfraError(f"service {dead} exited while starting:\n{stack.log_tail(dead)}")
            for name, url in list(pending.items()):
                try:
                    if http.get(f"{url}/readyz").status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise InfraError(f"not ready within {deadline_s:.0f} s: {sorted(pending)}")
            time.sleep(0.2)


def stop_processes(processes: Mapping[str, subprocess.Popen[bytes]]) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            proc.terminate()
    for proc in processes.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_ports() -> dict[str, int]:
    return {name: free_port() for name in SERVICE_PORTS}
