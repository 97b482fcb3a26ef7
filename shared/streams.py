"""The consuming side of every service: decode raw bytes -> validate -> dedupe ->
call the rule -> publish what it returned -> remember the event as handled, a batch
of records at a time.

A batch is the records of one topic that are waiting when the consumer asks (up to
``BATCH_MAX_RECORDS``; one record when they trickle in, so a batch adds no wait). Per
batch: one pipelined "already handled" check; the handlers, one client key after
another in offset order, different keys side by side; every output published with the
sends in flight together and the acknowledgements awaited once; the handled marks in
one pipeline; only then are the records acknowledged to the consumer, which commits
their offsets every ``broker_commit_interval`` (shared/faust_app.py). Why each
guarantee still holds is written down in the README ("Batches and the guarantees").

A record that cannot be decoded or validated, that this deployment must not read
(another chain, an unknown schema version or location: shared/admission.py), that
the handler rejects, or whose outputs the broker refuses for good (too large, not
authorised: shared/broker_errors.py) goes to ``clinic.deadletter`` with the
reason, cut to fit the broker's limit (shared/deadletters.py), and the next record
is processed. Infrastructure failures (broker, Redis) are retried with capped
backoff instead: the record is fine, the world is not, and dropping it would lose
accepted work.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, cast

import faust
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import logs
from shared.admission import refusal
from shared.clock import Clock
from shared.codec import DecodeError, decode_data, decode_envelope, peek_type
from shared.deadletters import RawRecord, dead_letter
from shared.envelope import Envelope
from shared.events import EVENT_MODELS, EventData
from shared.kafka import Outgoing, Publisher, PublishError, PublishRejected
from shared.metrics import DEADLETTERS, DEADLETTERS_UNSENT, EVENTS_CONSUMED, HANDLER_SECONDS
from shared.redaction import describe_error, scrub_text
from shared.redis_store import ProcessedEvents
from shared.topics import TopicSpec

log = logs.get_logger(__name__)
__all__ = [
    "TRANSIENT",
    "BatchHandler",
    "Batched",
    "Handler",
    "RawRecord",
    "Rejected",
    "StreamProcessor",
    "attach_agents",
]

Handler = Callable[[Envelope, EventData], Awaitable[Sequence[Outgoing]]]
BatchHandler = Callable[
    [Sequence[tuple[Envelope, EventData]]], Awaitable[Sequence[Sequence[Outgoing]]]
]


# a PublishRejected is a PublishError too: catch it first wherever it must not be retried
NOT_DECODED = DecodeError("not decoded: no handler for its type")


class StateMoved(Exception):
    """What a handler read changed before it could write its outcome (another writer,
    such as a sweep, got there first): the record is handled again, from the new state."""


TRANSIENT = (
    PublishError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
    TimeoutError,
    StateMoved,
)
MAX_BACKOFF_S = 10.0
BATCH_MAX_RECORDS = 200
KEYS_AT_ONCE = 16  # client keys of one batch handled side by side


class Rejected(ValueError):
    """A well-formed event the rule cannot act on (e.g. unknown location): dead-letter it."""


@dataclass(frozen=True)
class Batched:
    """A handler that also takes a run of records of its type at once: consecutive
    records of one client key, in offset order. ``many`` returns one output list per
    item, the same ones ``one`` would give item by item; should it fail other than
    transiently, the processor calls ``one`` item by item, which dead-letters exactly
    the bad record."""

    one: Handler
    many: BatchHandler

    async def __call__(self, envelope: Envelope, data: EventData) -> Sequence[Outgoing]:
        return await self.one(envelope, data)


@dataclass
class _Work:
    """One record of a batch and how far it got."""

    record: RawRecord
    envelope: Envelope | DecodeError
    event_type: str | None = None  # read from the bytes alone, for a record not decoded
    data: EventData | None = None
    handler: Handler | None = None
    # pending -> ran -> handled | dead-letter -> dead-lettered; or ignored / duplicate
    state: str = "pending"
    outputs: Sequence[Outgoing] = ()
    reason: str = ""
    seconds: float = 0.0
    context: dict[str, object] = field(default_factory=dict)

    @property
    def envelope_or_none(self) -> Envelope | None:
        return self.envelope if isinstance(self.envelope, Envelope) else None


class StreamProcessor:
    """Handles a batch of records of one topic; knows nothing about faust, so tests
    can drive it."""

    def __init__(
        self,
        *,
        service: str,
        chain_id: str,
        locations: Collection[str],
        handlers: Mapping[str, Handler],
        publisher: Publisher,
        processed: ProcessedEvents,
        clock: Clock,
    ) -> None:
        self.service = service
        self.chain_id = chain_id
        self.locations = frozenset(locations)
        self.handlers = dict(handlers)
        self.publisher = publisher
        self.processed = processed
        self.clock = clock
        # (topic, partition) -> the first offset this instance has not finished: the
        # first record of the batch in hand while one is, else the one after the last
        self.next_offsets: dict[tuple[str, int], int] = {}

    async def process(self, record: RawRecord) -> None:
        """Handle one record (a batch of one)."""
        await self.process_batch([record])

    async def process_batch(self, records: Sequence[RawRecord]) -> None:
        """Handle ``records`` (offset order per partition) until each is handled,
        skipped or dead-lettered; infrastructure failures are retried with capped
        backoff, redoing only what did not finish."""
        for record in reversed(records):
            self.next_offsets[(record.topic, record.partition)] = record.offset
        batch = [self._admit(record) for record in records]
        backoff = 0.1
        while True:
            try:
                await self._attempt(batch)
                break
            except TRANSIENT as exc:
                log.warning(
                    "transient failure, retrying",
                    retry_in_s=round(backoff, 1),
                    records=sum(work.state in ("pending", "dead-letter") for work in batch),
                    error=describe_error(exc),
                )
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(MAX_BACKOFF_S, backoff * 2)
        for record in records:
            self.next_offsets[(record.topic, record.partition)] = record.offset + 1

    def _admit(self, record: RawRecord) -> _Work:
        """Decode and screen ``record``: what can be known without Redis or the broker."""
        position = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        peeked = peek_type(record.value)
        if peeked is not None and peeked in EVENT_MODELS and peeked not in self.handlers:
            # a type this service does not handle (most records of a topic it reads for
            # one or two types): ignored without decoding it
            work = _Work(record, NOT_DECODED, state="ignored", event_type=peeked)
            self._count(work, "ignored")
            log.debug("record ignored: no handler for its type", event_type=peeked, **position)
            return work
        try:
            envelope = decode_envelope(record.value)
        except DecodeError as exc:
            return _Work(record, exc, state="dead-letter", reason=str(exc), context=dict(position))
        work = _Work(record, envelope, context={**position, **logs.envelope_context(envelope)})
        work.handler = self.handlers.get(envelope.type)
        if work.handler is None:
            work.state = "ignored"
            self._count(work, "ignored")
            with self._bound(work):
                log.debug("record ignored: no handler for its type")
            return work
        try:
            work.data = decode_data(envelope)
        except DecodeError as exc:  # the envelope is sound: the dead letter keeps its story
            work.state, work.reason = "dead-letter", str(exc)
            return work
        reason = refusal(envelope, work.data, chain_id=self.chain_id, locations=self.locations)
        if reason is not None:
            work.state, work.reason = "dead-letter", f"refused {envelope.type}: {reason}"
        return work

    async def _attempt(self, batch: Sequence[_Work]) -> None:
        """One pass over what is left of ``batch``; raises the first transient
        failure after finishing (publishing, marking) everything it could."""
        await self._skip_handled(batch)
        failures = await self._run_handlers([work for work in batch if work.state == "pending"])
        failures += await self._publish([work for work in batch if work.state == "ran"])
        handled = [work for work in batch if work.state == "handled"]
        # A dead-lettered event is not marked processed: replayed to its topic once
        # the cause is fixed, it must be handled, not skipped as a duplicate.
        await self.processed.mark_all(work.envelope for work in handled)  # type: ignore[misc]
        for work in handled:
            work.state = "done"
            self._count(work, "handled")
            HANDLER_SECONDS.labels(self.service, work.envelope.type).observe(work.seconds)  # type: ignore[union-attr]
            with self._bound(work):
                log.debug(
                    "record handled",
                    published=len(work.outputs),
                    duration_ms=round(work.seconds * 1000, 1),
                )
        for work in batch:
            if work.state == "dead-letter":
                with self._bound(work):
                    await self.dead_letter(work.record, work.reason, work.envelope_or_none)
                work.state = "dead-lettered"
        if failures:
            raise failures[0]

    async def _skip_handled(self, batch: Sequence[_Work]) -> None:
        """Mark as duplicates the records handled before (one round trip), or earlier
        in this batch (a redelivery can bring the same event twice)."""
        pending = [work for work in batch if work.state == "pending"]
        ids = [work.envelope.id for work in pending]  # type: ignore[union-attr]
        handled = await self.processed.seen_among([work.envelope for work in pending])  # type: ignore[misc]
        first: set[str] = set()
        for work, event_id in zip(pending, ids, strict=True):
            if event_id in handled or event_id in first:
                work.state = "duplicate"
                self._count(work, "duplicate")
                with self._bound(work):
                    log.debug("record skipped: already handled")
            first.add(event_id)

    async def _run_handlers(self, pending: Sequence[_Work]) -> list[BaseException]:
        """Run the handlers of ``pending``: one key's records in order, keys side by
        side; returns the transient failures (the key's later records stay pending)."""
        by_key: dict[bytes | None, list[_Work]] = {}
        for work in pending:
            by_key.setdefault(work.record.key, []).append(work)
        limit = asyncio.Semaphore(KEYS_AT_ONCE)

        async def run_key(works: list[_Work]) -> BaseException | None:
            async with limit:
                for run in _runs(works):
                    try:
                        await self._run(run)
                    except TRANSIENT as exc:
                        return exc
                return None

        if len(by_key) == 1:
            outcomes = [await run_key(next(iter(by_key.values())))]
        else:
            outcomes = list(await asyncio.gather(*(run_key(w) for w in by_key.values())))
        return [failure for failure in outcomes if failure is not None]

    async def _run(self, run: Sequence[_Work]) -> None:
        """Run one handler over ``run`` (one record, or a run a ``Batched`` takes at once)."""
        handler = run[0].handler
        if len(run) > 1 and isinstance(handler, Batched):
            started = time.perf_counter()
            items = [(work.envelope, work.data) for work in run]
            try:
                results = await handler.many(items)  # type: ignore[arg-type]
                if len(results) != len(run):
                    raise RuntimeError(f"{len(results)} results for {len(run)} records")
            except TRANSIENT:
                raise
            except Exception:
                log.exception("batch handler failed; handling its records one by one")
            else:
                share = (time.perf_counter() - started) / len(run)
                for work, outputs in zip(run, results, strict=True):
                    work.state, work.outputs, work.seconds = "ran", outputs, share
                return
        for work in run:
            await self._run_one(work)

    async def _run_one(self, work: _Work) -> None:
        assert work.handler is not None and isinstance(work.envelope, Envelope)
        envelope = work.envelope
        started = time.perf_counter()
        with self._bound(work):
            try:
                work.outputs = await work.handler(envelope, work.data)  # type: ignore[arg-type]
            # outputs refused for good by a handler that publishes itself (under a
            # lock); not marked handled, so a replay once fixed is handled
            except PublishRejected as exc:
                work.state, work.reason = "dead-letter", _refused(envelope.type, exc)
                return
            except TRANSIENT:
                raise
            except Rejected as exc:
                work.state, work.reason = "dead-letter", f"rejected {envelope.type}: {exc}"
                return
            except Exception as exc:  # a consumer must never stop on one record
                log.exception("handler failed")
                work.state, work.reason = "dead-letter", f"handler error: {describe_error(exc)}"
                return
        work.state, work.seconds = "ran", time.perf_counter() - started

    async def _publish(self, ran: Sequence[_Work]) -> list[BaseException]:
        """Publish every output of ``ran`` together; a record whose outputs the broker
        refused for good is dead-lettered, one with an unacknowledged output stays to
        be run again (its outputs repeat with the same ids)."""
        outputs = [(work, item) for work in ran for item in work.outputs]
        results = await self.publisher.publish_each([item for _, item in outputs])
        failed: dict[int, PublishError] = {}
        for (work, _), result in zip(outputs, results, strict=True):
            if result is not None and not isinstance(failed.get(id(work)), PublishRejected):
                failed[id(work)] = result
        transient: list[BaseException] = []
        for work in ran:
            failure = failed.get(id(work))
            if failure is None:
                work.state = "handled"
            elif isinstance(failure, PublishRejected):
                work.state = "dead-letter"
                work.reason = _refused(work.envelope.type, failure)  # type: ignore[union-attr]
            else:
                work.state = "pending"
                transient.append(failure)
        return transient

    def _count(self, work: _Work, outcome: str) -> None:
        if isinstance(work.envelope, Envelope):
            event_type = work.envelope.type
        else:
            event_type = work.event_type or "undecodable"
        EVENTS_CONSUMED.labels(self.service, work.record.topic, event_type, outcome).inc()

    def _bound(self, work: _Work) -> AbstractContextManager[None]:
        return logs.bound(service=self.service, **work.context)

    async def dead_letter(
        self, record: RawRecord, error: str, envelope: Envelope | None = None
    ) -> None:
        """Publish ``record`` to the dead letters with the reason, which names fields
        and rules, not the values that failed (shared/codec.py, shared/redaction.py).

        The dead letter is cut to the publisher's limit. Should the broker still
        refuse it for good (its own limit is lower, the topic is not writable), the
        smallest one (position, size, digest, reason) is tried; refused too, the
        record is logged and counted as not dead-lettered, and the consumer goes on:
        it stays on its topic at its offset."""
        error = scrub_text(error)
        log.warning("record dead-lettered", reason=error)
        letter = self.dead_letter_event(record, error, envelope)
        try:
            await self.publisher.publish([letter])
        except PublishRejected as refused:
            log.warning("dead letter refused, sending its smallest form", error=refused.reason)
            try:
                await self.publisher.publish([self.dead_letter_event(record, error, envelope, 0)])
            except PublishRejected as again:
                log.error("record not dead-lettered: the broker refused it", error=again.reason)
                DEADLETTERS_UNSENT.labels(self.service, record.topic).inc()
                return
        DEADLETTERS.labels(self.service, record.topic).inc()
        EVENTS_CONSUMED.labels(
            self.service, record.topic, envelope.type if envelope else "undecodable", "deadlettered"
        ).inc()

    def dead_letter_event(
        self,
        record: RawRecord,
        error: str,
        envelope: Envelope | None,
        max_bytes: int | None = None,
    ) -> Outgoing:
        """The dead letter of ``record``, within ``max_bytes`` (default: the publisher's limit)."""
        return dead_letter(
            record,
            error=error,
            service=self.service,
            chain_id=self.chain_id,
            envelope=envelope,
            now=self.clock.now(),
            max_bytes=self.publisher.max_message_bytes if max_bytes is None else max_bytes,
        )


def _refused(event_type: str, failure: PublishRejected) -> str:
    """The dead letter's reason when the broker refuses a record's outputs for good."""
    return f"outputs of {event_type} refused: {failure}"


def _runs(works: Sequence[_Work]) -> Iterator[list[_Work]]:
    """``works`` cut into runs of one handler, in order."""
    for _, run in groupby(works, key=lambda work: id(work.handler)):
        yield list(run)


def attach_agents(app: faust.App, processor: StreamProcessor, topics: Sequence[TopicSpec]) -> None:
    """One faust agent per consumed topic. Its stream is read without automatic acks
    into a bounded queue; a worker takes what is waiting (at least one record, at most
    ``BATCH_MAX_RECORDS``), hands the batch to the processor and acknowledges its
    records, in order, once the processor is done with them: outputs acknowledged by
    the broker, handled marks written. faust commits acknowledged offsets only."""
    for spec in topics:
        channel = app.topic(spec.name, partitions=spec.partitions, value_type=bytes, key_type=bytes)

        async def agent(stream: faust.StreamT) -> None:  # type: ignore[type-arg]
            manual = cast(Any, stream).noack()
            waiting: asyncio.Queue[faust.EventT] = asyncio.Queue(BATCH_MAX_RECORDS)  # type: ignore[type-arg]

            async def read() -> None:
                async for event in manual.events():
                    await waiting.put(event)

            reader = asyncio.create_task(read())
            try:
                while batch := await _next_batch(waiting, reader):
                    await processor.process_batch([_raw(event) for event in batch])
                    for event in batch:
                        await manual.ack(event)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

        app.agent(channel, name=f"{processor.service}.{spec.name}")(agent)


async def _next_batch(
    waiting: asyncio.Queue[faust.EventT],  # type: ignore[type-arg]
    reader: asyncio.Task[None],
) -> list[faust.EventT] | None:  # type: ignore[type-arg]
    """The records waiting now: blocks for the first, takes the rest without waiting.
    None once the reader stopped (the agent stops), or its error if it failed."""
    if waiting.empty():
        first = asyncio.ensure_future(waiting.get())
        await asyncio.wait({first, reader}, return_when=asyncio.FIRST_COMPLETED)
        if not first.done():
            first.cancel()
            reader.result()  # raises the reader's error, if any
            return None
        batch = [first.result()]
    else:
        batch = [waiting.get_nowait()]
    while len(batch) < BATCH_MAX_RECORDS and not waiting.empty():
        batch.append(waiting.get_nowait())
    return batch


def _raw(event: faust.EventT) -> RawRecord:  # type: ignore[type-arg]
    message = event.message
    return RawRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
    )
