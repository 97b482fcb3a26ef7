"""``clinicflow up`` as an operator runs it: on the ports the environment names, stopped by
SIGINT or SIGTERM whatever it inherited, taking its services with it when killed hard, and
stopping in a bounded time even when the broker went first."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shared.infra import Infra
from shared.stack import PROJECT_ROOT, SERVICE_PORTS, STOP_GRACE_S, free_ports, stop_processes

pytestmark = pytest.mark.integration

UP_WITHIN_S = 90.0


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` in /proc, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def exited(pid: int) -> bool:
    return process_state(pid) in (None, "Z")  # a zombie has exited; its reaper is elsewhere


def children(pid: int) -> dict[int, str]:
    """Every process whose parent is ``pid``, with its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = command.strip()
    return found


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition: Callable[[], bool], *, within_s: float, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return condition()


def ignoring_stop_signals() -> None:
    """As a supervisor or a background shell may start it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Up:
    """``python -m shared.cli up`` (what the ``clinicflow up`` script runs) in a subprocess."""

    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        preexec: Callable[[], None] | None = None,
    ) -> None:
        self.out, self.err = workdir / "up.out", workdir / "up.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "shared.cli", "up"],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=err,
                preexec_fn=preexec,
            )

    def output(self) -> str:
        return f"stdout:\n{self.out.read_text()}\nstderr (tail):\n{self.err.read_text()[-3000:]}"

    def wait_until_up(self) -> dict[int, str]:
        """Wait for the launcher's banner; return the processes it started."""

        def up_or_gone() -> bool:
            return "stops everything started here" in self.out.read_text() or (
                self.process.poll() is not None
            )

        assert wait_for(up_or_gone, within_s=UP_WITHIN_S, every_s=0.2), self.output()
        assert self.process.poll() is None, self.output()
        return children(self.process.pid)

    def stop(self) -> None:
        """Kill it if it is still running (its services then follow on their own)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class Launched:
    up: Up
    ports: dict[str, int]
    broker: int = 0
    services: dict[int, str] = field(default_factory=dict)

    def assert_all_stopped(self) -> None:
        still = {pid: command for pid, command in self.services.items() if not exited(pid)}
        assert not still, f"left running: {still}\n{self.up.output()}"
        open_ports = {name: port for name, port in self.ports.items() if listening(port)}
        assert not open_ports, f"still listening: {open_ports}\n{self.up.output()}"


@pytest.fixture
def launch(infra: Infra, namespace: str, tmp_path: Path) -> Iterator[Callable[..., Launched]]:
    """Start ``clinicflow up`` on free ports (``<SERVICE>_PORT``) against the run's Redis
    and its own embedded broker (the services' consumer groups are the same in every
    stack: on a broker of its own a stack starts without rebalancing with others);
    whatever is left is killed after."""
    started: list[Launched] = []

    def start(*, preexec: Callable[[], None] | None = None) -> Launched:
        ports = free_ports()
        env = {
            **{k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"},
            "REDIS_URL": infra.redis_url,
            "CLINICFLOW_REDIS_NAMESPACE": f"{namespace}-up-{uuid.uuid4().hex[:6]}",
            **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
        }
        workdir = tmp_path / f"up-{len(started)}"
        workdir.mkdir()
        launched = Launched(Up(env, workdir, preexec), ports)
        started.append(launched)
        spawned = launched.up.wait_until_up()
        (launched.broker,) = [pid for pid, command in spawned.items() if "tansu" in command]
        launched.services = {pid: c for pid, c in spawned.items() if pid != launched.broker}
        assert len(launched.services) == len(SERVICE_PORTS), spawned
        assert all(listening(port) for port in ports.values()), launched.up.output()
        return launched

    yield start
    for launched in started:
        launched.up.stop()
        for pid in [*launched.services, launched.broker]:
            if pid and not exited(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_sigint_and_sigterm_stop_it_even_when_it_was_started_ignoring_them(
    launch: Callable[..., Launched], stop_signal: signal.Signals
) -> None:
    launched = launch(preexec=ignoring_stop_signals)
    up = launched.up

    up.process.send_signal(stop_signal)
    status = up.process.wait(timeout=STOP_GRACE_S + 10)

    assert status == 0, up.output()
    assert "clinicflow stopped." in up.out.read_text()
    launched.assert_all_stopped()
    assert exited(launched.broker)  # the broker it started, too


def test_its_services_stop_when_it_is_killed_hard(launch: Callable[..., Launched]) -> None:
    launched = launch()

    launched.up.process.kill()
    launched.up.process.wait()

    # each notices within half a second and stops as SIGTERM would; the embedded broker
    # it started gets the parent-death signal, so a service may stop without it (the
    # watch's own 20 s bound then holds)
    services = launched.services
    assert wait_for(lambda: exited(launched.broker), within_s=10)
    assert wait_for(lambda: all(exited(pid) for pid in services), within_s=25), services
    launched.assert_all_stopped()


def test_stopping_is_parallel_and_bounded_when_the_broker_went_first(
    launch: Callable[..., Launched],
) -> None:
    launched = launch()
    up = launched.up

    os.kill(launched.broker, signal.SIGKILL)
    assert wait_for(lambda: exited(launched.broker), within_s=5)
    started = time.monotonic()
    up.process.terminate()
    status = up.process.wait(timeout=STOP_GRACE_S + 15)
    took = time.monotonic() - started

    assert status == 0, up.output()
    # one shared grace for all five, then SIGKILL: one after another took ~50 s
    assert took < STOP_GRACE_S + 5, f"stopping took {took:.1f} s\n{up.output()}"
    launched.assert_all_stopped()


def test_a_taken_port_is_named_with_its_variable_and_nothing_is_left_running(
    infra: Infra, tmp_path: Path
) -> None:
    ports = free_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        ports["planner"] = squatter.getsockname()[1]
        env = {
            **os.environ,
            **infra.environment(),
            **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
        }
        up = Up(env, tmp_path)
        try:
            status = up.process.wait(timeout=30)
        finally:
            up.stop()

        assert status == 1, up.output()
        assert (
            f"port {ports['planner']} for planner is in use on 127.0.0.1: "
            "set PLANNER_PORT to a free port"
        ) in up.err.read_text()
        assert "clinicflow is up" not in up.out.read_text()
        others = {name: port for name, port in ports.items() if name != "planner"}
        assert not any(listening(port) for port in others.values())


@pytest.mark.parametrize(
    ("value", "said"),
    [("eighty", "INTAKE_PORT='eighty' is not a port number"), ("70000", "out of range")],
)
def test_a_port_value_that_is_no_port_is_a_clear_error(
    tmp_path: Path, value: str, said: str
) -> None:
    up = Up({**os.environ, "INTAKE_PORT": value}, tmp_path)
    try:
        status = up.process.wait(timeout=30)
    finally:
        up.stop()
    assert status == 2, up.output()
    assert said in up.err.read_text()
    assert "Traceback" not in up.err.read_text()


SLOW_TO_STOP = """
import signal, sys, time
def stop(*_):
    time.sleep({stop_s})
    sys.exit(0)
signal.signal(signal.SIGTERM, {handler})
print("ready", flush=True)
time.sleep(120)
"""


def started_children(
    count: int, *, handler: str, stop_s: float = 0.0
) -> dict[str, subprocess.Popen[bytes]]:
    code = SLOW_TO_STOP.format(handler=handler, stop_s=stop_s)
    processes = {
        f"p{i}": subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        for i in range(count)
    }
    for proc in processes.values():
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return processes


def test_stop_processes_terminates_all_at_once_within_one_shared_grace() -> None:
    graceful = started_children(4, handler="stop", stop_s=1.5)
    started = time.monotonic()
    stop_processes(graceful, grace_s=10)
    took = time.monotonic() - started
    assert [proc.returncode for proc in graceful.values()] == [0] * 4
    assert took < 4, f"one after another would take 6 s, took {took:.1f} s"

    stubborn = started_children(4, handler="signal.SIG_IGN")
    started = time.monotonic()
    stop_processes(stubborn, grace_s=1)
    took = time.monotonic() - started
    assert [proc.returncode for proc in stubborn.values()] == [-signal.SIGKILL] * 4
    assert took < 3, f"one grace for all four, then SIGKILL: took {took:.1f} s"


WATCHED = """
import sys, time
from shared.runtime import stop_when_parent_is_gone
stop_when_parent_is_gone(int(sys.argv[1]))
print("watching", flush=True)
time.sleep(120)
"""


def test_the_parent_watch_stops_only_a_process_whose_launcher_is_gone() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a launcher that died before its child started watching
    followed, orphaned = (
        subprocess.Popen(
            [sys.executable, "-c", WATCHED, str(parent)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE
        )
        for parent in (os.getpid(), gone.pid)
    )
    try:
        # the orphan's watch may stop it before it says anything: only its end is asked
        assert followed.stdout is not None and followed.stdout.readline() == b"watching\n"
        assert orphaned.wait(timeout=5) == -signal.SIGTERM
        assert followed.poll() is None
    finally:
        stop_processes({"followed": followed, "orphaned": orphaned}, grace_s=1)
