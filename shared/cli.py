"""The ``clinicflow`` command: ``up``, ``demo``, ``schemas``, ``topics`` and ``replay``."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from shared.chain import ChainConfigError, load_chain_config
from shared.infra import InfraError, local_infra
from shared.settings import DEFAULT_CHAIN_CONFIG
from shared.stack import (
    PortSettingError,
    check_ports_free,
    ports_from_environment,
    running_stack,
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clinicflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole stack in the foreground")
    up.add_argument("--config", type=Path, default=DEFAULT_CHAIN_CONFIG, help="chain YAML")
    up.add_argument("--clock", default=None, help="CLINICFLOW_CLOCK for every service")

    demo = commands.add_parser("demo", help="one scripted client journey on the simulated clock")
    demo.add_argument("--config", type=Path, default=DEFAULT_CHAIN_CONFIG)
    demo.add_argument("--speed", type=float, default=20000.0, help="simulated seconds per second")
    demo.add_argument("--timeout", type=float, default=240.0, help="real seconds to wait at most")

    schemas = commands.add_parser("schemas", help="write JSON Schema for every event type")
    schemas.add_argument("--out", type=Path, default=Path("schemas"))

    topics = commands.add_parser(
        "topics", help="describe the public topics on a broker; --create makes the missing ones"
    )
    topics.add_argument(
        "--bootstrap",
        default=None,
        help="broker address (default: KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092)",
    )
    topics.add_argument("--create", action="store_true", help="create the missing topics")

    replay = commands.add_parser(
        "replay",
        help="rebuild the ops dashboard's read model from offset 0 of every public topic",
        description="Folds every public topic from its first offset into a new generation "
        "of the dashboard's read model and switches to it when done; a running dashboard "
        "carries on from there. Reads KAFKA_BOOTSTRAP_SERVERS, REDIS_URL and "
        "CLINICFLOW_REDIS_NAMESPACE like the services.",
    )
    replay.add_argument("--bootstrap", default=None, help="broker (default: the environment)")
    replay.add_argument("--redis", default=None, help="Redis URL (default: the environment)")

    args = parser.parse_args(argv)
    if args.command == "replay":
        return _replay(args.bootstrap, args.redis)
    if args.command == "topics":
        return _topics(args.bootstrap, create=args.create)
    if args.command == "up":
        return _up(args.config, args.clock)
    if args.command == "demo":
        from shared.demo import run_demo

        return run_demo(config=args.config, speed=args.speed, timeout_s=args.timeout)
    from shared.schemas import write_schemas

    for path in write_schemas(args.out):
        print(path)
    return 0


def _topics(bootstrap: str | None, *, create: bool) -> int:
    import asyncio
    import os

    from shared.topics_cli import run

    address = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    try:
        status, lines = asyncio.run(run(address, create=create))
    except Exception as exc:  # the broker is unreachable: say so, do not dump a traceback
        print(f"clinicflow: topics on {address}: {exc!r}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return status


def _replay(bootstrap: str | None, redis_url: str | None) -> int:
    import asyncio

    from pydantic import ValidationError

    from services.dashboard.replay import replay_dashboard
    from shared.settings import DashboardSettings

    overrides = {
        name: value
        for name, value in (("KAFKA_BOOTSTRAP_SERVERS", bootstrap), ("REDIS_URL", redis_url))
        if value
    }
    try:
        settings = DashboardSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        print(f"clinicflow: replay: {exc}", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(replay_dashboard(settings))
    except Exception as exc:  # the broker or Redis is unreachable: say so, no traceback
        print(f"clinicflow: replay: {exc!r}", file=sys.stderr)
        return 2
    if not summary.current:
        print(
            f"clinicflow: replay: a newer rebuild finished first; generation "
            f"{summary.generation} was dropped",
            file=sys.stderr,
        )
        return 1
    print(
        f"dashboard read model rebuilt: generation {summary.generation}, "
        f"{summary.records} records from {summary.partitions} partitions "
        f"in {summary.seconds:.1f} s"
    )
    return 0


class _Stopped(BaseException):
    """SIGINT or SIGTERM arrived: unwind, stopping everything started so far."""


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM both raise ``_Stopped``, whatever dispositions or mask this
    process inherited (a supervisor or a background shell may start it with SIGINT
    ignored). The first one stops; later ones are ignored so the stop runs to its end."""
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

    def stop(signum: int, frame: FrameType | None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise _Stopped(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        for stopping, handler in previous.items():
            if handler is not None:  # None: set outside Python, nothing to put back
                signal.signal(stopping, handler)


def _up(config: Path, clock: str | None) -> int:
    import os

    try:
        chain = load_chain_config(config)
        ports = ports_from_environment(os.environ)
    except (ChainConfigError, PortSettingError) as exc:
        print(f"clinicflow: {exc}", file=sys.stderr)
        return 2
    clock_spec = clock or os.environ.get("CLINICFLOW_CLOCK", "system")
    # readable lines in a terminal; JSON (the services' default) when collected
    os.environ.setdefault("CLINICFLOW_LOG_FORMAT", "console" if sys.stderr.isatty() else "json")
    try:
        with _stopped_by_signals():
            # before the broker starts: a taken port is said at once
            check_ports_free(ports, os.environ.get("CLINICFLOW_HOST", "127.0.0.1"))
            with (
                local_infra(die_with_parent=True) as infra,  # even after kill -9
                running_stack(
                    infra, config=config.resolve(), clock=clock_spec, ports=ports
                ) as stack,
            ):
                print(f"clinicflow is up: chain {chain.chain.name} ({config})")
                embedded_kafka = " (embedded Tansu)" if infra.embedded_kafka else ""
                embedded_redis = " (embedded)" if infra.embedded_redis else ""
                print(f"  broker  {infra.kafka_bootstrap_servers}{embedded_kafka}")
                print(f"  redis   {infra.redis_url}{embedded_redis}")
                print(f"  clock   {clock_spec}")
                for name, url in stack.urls.items():
                    print(f"  {name:<9} {url}   (API docs: {url}/docs)")
                print("  API keys:")
                for key in chain.api_keys:
                    print(f"    {key.key:<28} {key.role:<10} {','.join(key.locations)}")
                print("Ctrl-C (SIGINT) or SIGTERM stops everything started here.", flush=True)
                while not stack.dead():
                    time.sleep(0.5)
                for name in stack.dead():
                    print(f"clinicflow: service {name} stopped unexpectedly", file=sys.stderr)
                return 1
    except _Stopped:
        pass
    except InfraError as exc:
        print(f"clinicflow: {exc}", file=sys.stderr)
        return 1
    print("clinicflow stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
