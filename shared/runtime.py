"""What every service process holds: settings, chain, clock, Redis, a publisher and,
for consuming services, a faust app - started and stopped in one place."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import faust
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from shared import logs
from shared.chain import ChainConfig, ChainConfigError, load_chain_config
from shared.clock import Clock, ClockSpecError, parse_clock
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import EventData
from shared.faust_app import create_faust_app
from shared.kafka import Outgoing, Publisher, ensure_topics
from shared.lag import report_lag
from shared.redis_store import Keys, ProcessedEvents, connect
from shared.settings import CommonSettings
from shared.streams import Handler, StreamProcessor, attach_agents
from shared.strength import weak_keys
from shared.topics import TopicSpec

log = logging.getLogger(__name__)
S = TypeVar("S", bound=CommonSettings)

PARENT_PID_VARIABLE = "CLINICFLOW_PARENT_PID"
PARENT_POLL_S = 0.5
PARENT_GONE_GRACE_S = 20.0  # a graceful stop that outlasts this (no broker) is cut short


class StartupError(RuntimeError):
    """Configuration that stops a service from starting, with a message for the operator."""


def load_settings(settings_class: type[S]) -> S:
    try:
        return settings_class()
    except ValidationError as exc:
        lines = [f"invalid settings for {settings_class.__name__}:"]
        lines += [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise StartupError("\n".join(lines)) from exc


@dataclass
class Foundations:
    """What a service knows before it connects to anything."""

    service: str
    settings: CommonSettings
    chain: ChainConfig
    clock: Clock

    @classmethod
    def load(cls, service: str, settings: CommonSettings) -> Foundations:
        try:
            chain = load_chain_config(settings.chain_config)
            clock = parse_clock(settings.clock, anchor=settings.clock_anchor)
        except (ChainConfigError, ClockSpecError) as exc:
            raise StartupError(str(exc)) from exc
        if settings.env == "production":
            demo = weak_keys(chain)
            if demo:
                raise StartupError(f"demo or placeholder API keys refused in production: {demo}")
        return cls(service=service, settings=settings, chain=chain, clock=clock)


@dataclass
class Runtime:
    base: Foundations
    redis: aioredis.Redis
    keys: Keys
    publisher: Publisher
    faust_app: faust.App | None = None
    rebalanced: bool = False
    consumer: bool = False  # it consumes topics (its faust app may not be up yet)

    @property
    def chain(self) -> ChainConfig:
        return self.base.chain

    @property
    def clock(self) -> Clock:
        return self.base.clock

    @property
    def service(self) -> str:
        return self.base.service

    def outgoing(
        self,
        fact: EventData,
        *,
        key: str,
        subject: str,
        event_id: str,
        trace: Trace,
        time: datetime | None = None,
    ) -> Outgoing:
        """An event of this service ready to publish; ``time`` defaults to the shared clock."""
        envelope = wrap(
            fact,
            event_id=event_id,
            service=self.service,
            subject=subject,
            trace=trace,
            time=time if time is not None else self.clock.now(),
        )
        return Outgoing(key=key, envelope=envelope)

    async def readiness(self) -> dict[str, bool]:
        """Redis and the broker asked now (the broker's answer is reused for a few
        seconds: shared/kafka.py), and for a consumer whether it holds its partitions."""
        redis_ok, broker_ok = await asyncio.gather(
            self._redis_reachable(), self.publisher.broker_reachable()
        )
        checks = {"redis": redis_ok, "broker": broker_ok}
        if self.consumer or self.faust_app is not None:
            app = self.faust_app
            checks["consuming"] = app is not None and self.rebalanced and not app.rebalancing
        return checks

    async def _redis_reachable(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 2))
        except Exception:
            return False


HandlersFactory = Callable[[Runtime], Mapping[str, Handler]]


@asynccontextmanager
async def running(
    base: Foundations,
    *,
    consumes: Sequence[TopicSpec] = (),
    handlers: HandlersFactory | None = None,
    connected: Callable[[Runtime], None] | None = None,
    stopping: Callable[[], Awaitable[None]] | None = None,
) -> AsyncIterator[Runtime]:
    """The runtime of a service: Redis, the publisher and, for a consumer, its faust
    app. ``connected`` is called once Redis and the publisher are up and before the
    consumer joins its group (which can take the group's session timeout after a
    crash): what needs no consuming (the notifier's sends, outbox relays) starts
    there; ``stopping`` is awaited first on the way out, while all is still up."""
    settings = base.settings
    client = connect(settings, service=base.service)
    keys = Keys(settings.redis_namespace, base.service)
    publisher = Publisher(settings, client_id=f"clinicflow-{base.service}", service=base.service)
    runtime = Runtime(
        base=base, redis=client, keys=keys, publisher=publisher, consumer=bool(consumes)
    )
    lag: asyncio.Task[None] | None = None
    try:
        await ensure_topics(settings.kafka_bootstrap_servers)
        await publisher.start()
        if connected is not None:
            connected(runtime)
        if consumes:
            assert handlers is not None, "a consuming service needs handlers"
            runtime.faust_app, processor = _consumer_app(runtime, consumes, handlers(runtime))
            await runtime.faust_app.start()
            lag = asyncio.create_task(
                report_lag(runtime.faust_app, processor, {spec.name for spec in consumes})
            )
        yield runtime
    finally:
        if stopping is not None:
            await stopping()
        if lag is not None:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
        if runtime.faust_app is not None:
            await runtime.faust_app.stop()
        await publisher.stop()
        await client.aclose()


def stream_processor(runtime: Runtime, handlers: Mapping[str, Handler]) -> StreamProcessor:
    """The record-at-a-time consumer of ``runtime``'s service (faust feeds it)."""
    return StreamProcessor(
        service=runtime.service,
        chain_id=runtime.chain.chain.id,
        locations=[location.id for location in runtime.chain.locations],
        handlers=handlers,
        publisher=runtime.publisher,
        processed=ProcessedEvents(runtime.redis, runtime.keys),
        clock=runtime.clock,
    )


def _consumer_app(
    runtime: Runtime, topics: Sequence[TopicSpec], handlers: Mapping[str, Handler]
) -> tuple[faust.App, StreamProcessor]:
    app = create_faust_app(runtime.service, runtime.base.settings)
    processor = stream_processor(runtime, handlers)
    attach_agents(app, processor, topics)

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def _rebalanced(sender: Any, **_: Any) -> None:
        runtime.rebalanced = True

    return app, processor


def serve(
    settings_class: type[S], build: Callable[[S], FastAPI], *, service: str | None = None
) -> None:
    """Run a service in the foreground; configuration errors exit with status 2.

    ``service`` names the process in its log lines; by default the settings class
    says it (``PlannerSettings``: ``planner``)."""
    name = service or settings_class.__name__.removesuffix("Settings").lower()
    try:
        parent = os.environ.get(PARENT_PID_VARIABLE, "")
        if parent:
            if not parent.isdigit():
                raise StartupError(f"{PARENT_PID_VARIABLE}={parent!r} is not a process id")
            stop_when_parent_is_gone(int(parent))
        settings = load_settings(settings_class)
        logs.configure_logging(settings.log_level, service=name, json=settings.log_format == "json")
        app = build(settings)
    except StartupError as exc:
        print(f"clinicflow: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    port = int(getattr(settings, "port"))  # noqa: B009 - every service settings class has one
    # log_config=None: uvicorn's records go through the handler configured above
    uvicorn.run(
        app, host=settings.host, port=port, log_level="warning", log_config=None, lifespan="on"
    )


def stop_when_parent_is_gone(parent_pid: int) -> None:
    """Stop this process, as SIGTERM would, once ``parent_pid`` is no longer its parent
    (the launcher died, even by SIGKILL, and this process was handed to init), and exit
    after a grace if the stop hangs.

    Opt-in through ``CLINICFLOW_PARENT_PID``, which shared/stack.py sets for every process
    it starts (``clinicflow up``, the end-to-end tests): a service run as PID 1 in a
    container or by a supervisor has no launcher to follow. Polling getppid() rather than
    PR_SET_PDEATHSIG, which fires when the *thread* that started the child ends (a restart
    from a worker thread), not when the launcher does; comparing with the given pid
    catches a launcher that died before this process got here."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        log.warning("launcher %d is gone: stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(PARENT_GONE_GRACE_S)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
