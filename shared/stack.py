"""Starts the four services and the ops dashboard as separate processes against
one broker and Redis, all on one clock anchor, and waits until every one is ready. Used by
``clinicflow up``, ``clinicflow demo`` and the end-to-end tests.

Each process it starts gets ``CLINICFLOW_PARENT_PID`` (shared/runtime.py): the service
stops when this process is gone, so a launcher killed hard leaves nothing on its ports."""

from __future__ import annotations

import asyncio
import os
import socket
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
STOP_GRACE_S = 10.0  # how long the services together get to stop before they are killed


class PortSettingError(ValueError):
    """A ``<SERVICE>_PORT`` that is not a port number."""


class PortTaken(InfraError):
    """A chosen port that something else already listens on."""


def port_variable(name: str) -> str:
    return f"{name.upper()}_PORT"


def ports_from_environment(environ: Mapping[str, str]) -> dict[str, int]:
    """Each service's port: ``<SERVICE>_PORT`` when set, else its default; two services
    on one port are refused."""
    chosen: dict[str, int] = {}
    for name, default in SERVICE_PORTS.items():
        variable = port_variable(name)
        raw = environ.get(variable)
        if raw is None:
            chosen[name] = default
            continue
        try:
            port = int(raw)
        except ValueError:
            raise PortSettingError(f"{variable}={raw!r} is not a port number") from None
        if not 1 <= port <= 65535:
            raise PortSettingError(f"{variable}={port} is out of range (1-65535)")
        chosen[name] = port
    by_port: dict[int, list[str]] = {}
    for name, port in chosen.items():
        by_port.setdefault(port, []).append(name)
    for port, names in by_port.items():
        if len(names) > 1:
            variables = " or ".join(port_variable(name) for name in names)
            raise PortSettingError(
                f"{' and '.join(names)} would share port {port}: set {variables}"
            )
    return chosen


def port_is_free(host: str, port: int) -> bool:
    """True when a service could listen on ``host:port`` now (as uvicorn binds: with
    SO_REUSEADDR, so a port left in TIME_WAIT counts as free)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        return True  # an unresolvable host is the service's own start-up error to report
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
    return True


def check_ports_free(ports: Mapping[str, int], host: str) -> None:
    """Raise ``PortTaken`` naming every service whose port is in use, and its variable."""
    taken = [name for name, port in ports.items() if not port_is_free(host, port)]
    if taken:
        raise PortTaken(
            "; ".join(
                f"port {ports[name]} for {name} is in use on {host}: "
                f"set {port_variable(name)} to a free port"
                for name in taken
            )
        )


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
    env.update({port_variable(name): str(port) for name, port in ports.items()})
    if "scheduler" in ports:  # messages link to this stack's services, wherever they listen
        scheduler = f"http://127.0.0.1:{ports['scheduler']}/v1"
        env["NOTIFIER_CONFIRM_URL_TEMPLATE"] = (
            f"{scheduler}/visits/{{visit_id}}/manage?sig={{sig}}&lang={{lang}}"
        )
        env["NOTIFIER_CALENDAR_URL_TEMPLATE"] = (
            f"{scheduler}/clients/{{client_id}}/calendar.ics?sig={{sig}}"
        )
        env["NOTIFIER_OFFER_URL_TEMPLATE"] = (
            f"{scheduler}/waitlist-offers/{{offer_id}}/manage?sig={{sig}}&lang={{lang}}"
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
    """Start every service as its own process; stop them all on exit. A port in use
    raises ``PortTaken`` before anything is started."""
    chosen = dict(ports) if ports is not None else dict(SERVICE_PORTS)
    env = stack_environment(infra, config=config, clock=clock, ports=chosen, extra=extra_env)
    check_ports_free(chosen, env.get("CLINICFLOW_HOST", "127.0.0.1"))
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
            env={**env, "CLINICFLOW_PARENT_PID": str(os.getpid())},
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=None if sink is None else subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches `clinicflow up`, which stops them all
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


def kill_and_start(stack: Stack, name: str) -> subprocess.Popen[bytes]:
    """SIGKILL one service and start it again at once, with the same environment, not
    waiting until it is ready (a crash and a supervisor's restart); returns the new process."""
    proc = stack.processes[name]
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    log_dir = stack.logs[name].parent if name in stack.logs else None
    stack.processes[name], _ = _spawn(name, stack.environment, log_dir)
    return stack.processes[name]


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


def stop_processes(
    processes: Mapping[str, subprocess.Popen[bytes]], *, grace_s: float = STOP_GRACE_S
) -> None:
    """SIGTERM to all at once, one shared deadline for all, then SIGKILL what is left: a
    faust service that cannot reach the broker may take longer than the grace to stop."""
    running = [proc for proc in processes.values() if proc.poll() is None]
    for proc in running:
        proc.terminate()
    deadline = time.monotonic() + grace_s
    for proc in running:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
    for proc in running:
        proc.wait()


def free_ports() -> dict[str, int]:
    return {name: free_port() for name in SERVICE_PORTS}
