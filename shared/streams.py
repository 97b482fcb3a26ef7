"""The consuming side of every service: decode raw bytes -> validate -> dedupe ->
call the rule -> publish what it returned -> remember the event as handled.

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
import random
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

import faust
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import logs
from shared.admission import refusal
from shared.clock import Clock
from shared.codec import DecodeError, decode_data, decode_envelope
from shared.deadletters import RawRecord, dead_letter
from shared.envelope import Envelope
from shared.events import EventData
from shared.kafka import Outgoing, Publisher, PublishError, PublishRejected
from shared.metrics import DEADLETTERS, DEADLETTERS_UNSENT, EVENTS_CONSUMED, HANDLER_SECONDS
from shared.redaction import describe_error, scrub_text
from shared.redis_store import ProcessedEvents
from shared.topics import TopicSpec

log = logs.get_logger(__name__)
__all__ = ["TRANSIENT", "Handler", "RawRecord", "Rejected", "StreamProcessor", "attach_agents"]

Handler = Callable[[Envelope, EventData], Awaitable[Sequence[Outgoing]]]
# a PublishRejected is a PublishError too: catch it first wherever it must not be retried
TRANSIENT = (PublishError, RedisConnectionError, RedisTimeoutError, ConnectionError, TimeoutError)
MAX_BACKOFF_S = 10.0


class Rejected(ValueError):
    """A well-formed event the rule cannot act on (e.g. unknown location): dead-letter it."""


class StreamProcessor:
    """Handles one record at a time; knows nothing about faust, so tests can drive it."""

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
        # record in hand while one is, else the one after the last it finished
        self.next_offsets: dict[tuple[str, int], int] = {}

    async def process(self, record: RawRecord) -> None:
        position = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
        with logs.bound(service=self.service, **position):
            try:
                envelope: Envelope | DecodeError = decode_envelope(record.value)
            except DecodeError as exc:
                envelope = exc
            context = logs.envelope_context(envelope) if isinstance(envelope, Envelope) else {}
            with logs.bound(**context):
                await self._until_done(record, envelope)

    async def _until_done(self, record: RawRecord, envelope: Envelope | DecodeError) -> None:
        self.next_offsets[(record.topic, record.partition)] = record.offset
        backoff = 0.1
        while True:
            try:
                await self._process_once(record, envelope)
                self.next_offsets[(record.topic, record.partition)] = record.offset + 1
                return
            except TRANSIENT as exc:
                log.warning(
                    "transient failure, retrying",
                    retry_in_s=round(backoff, 1),
                    error=describe_error(exc),
                )
                await asyncio.sleep(backoff * (0.5 + random.random() / 2))
                backoff = min(MAX_BACKOFF_S, backoff * 2)

    async def _process_once(self, record: RawRecord, envelope: Envelope | DecodeError) -> None:
        if isinstance(envelope, DecodeError):
            await self.dead_letter(record, str(envelope))
            return
        handler = self.handlers.get(envelope.type)
        if handler is None:
            EVENTS_CONSUMED.labels(self.service, record.topic, envelope.type, "ignored").inc()
            log.debug("record ignored: no handler for its type")
            return
        try:
            data = decode_data(envelope)
        except DecodeError as exc:  # the envelope is sound: the dead letter keeps its story
            await self.dead_letter(record, str(exc), envelope)
            return
        reason = refusal(envelope, data, chain_id=self.chain_id, locations=self.locations)
        if reason is not None:
            await self.dead_letter(record, f"refused {envelope.type}: {reason}", envelope)
            return
        if await self.processed.seen(envelope.id):
            EVENTS_CONSUMED.labels(self.service, record.topic, envelope.type, "duplicate").inc()
            log.debug("record skipped: already handled")
            return
        started = time.perf_counter()
        try:
            outputs = await handler(envelope, data)
            await self.publisher.publish(outputs)
        # outputs refused for good, by this publish or by a handler that publishes
        # itself (under a lock); not marked handled, so a replay once fixed is handled
        except PublishRejected as exc:
            await self.dead_letter(record, f"outputs of {envelope.type} refused: {exc}", envelope)
            return
        except TRANSIENT:
            raise
        # A dead-lettered event is not marked processed: replayed to its topic once
        # the cause is fixed, it must be handled, not skipped as a duplicate.
        except Rejected as exc:
            await self.dead_letter(record, f"rejected {envelope.type}: {exc}", envelope)
            return
        except Exception as exc:  # a consumer must never stop on one record
            log.exception("handler failed")
            await self.dead_letter(record, f"handler error: {describe_error(exc)}", envelope)
            return
        await self.processed.mark(envelope.id)
        elapsed = time.perf_counter() - started
        HANDLER_SECONDS.labels(self.service, envelope.type).observe(elapsed)
        EVENTS_CONSUMED.labels(self.service, record.topic, envelope.type, "handled").inc()
        log.debug("record handled", published=len(outputs), duration_ms=round(elapsed * 1000, 1))

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


def attach_agents(app: faust.App, processor: StreamProcessor, topics: Sequence[TopicSpec]) -> None:
    """One faust agent per consumed topic; each hands raw records to the processor."""
    for spec in topics:
        channel = app.topic(spec.name, partitions=spec.partitions, value_type=bytes, key_type=bytes)

        async def agent(stream: faust.StreamT) -> None:  # type: ignore[type-arg]
            async for event in stream.events():
                message = event.message
                await processor.process(
                    RawRecord(
                        topic=message.topic,
                        partition=message.partition,
                        offset=message.offset,
                        key=message.key,
                        value=message.value,
                    )
                )

        app.agent(channel, name=f"{processor.service}.{spec.name}")(agent)
