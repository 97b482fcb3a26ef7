"""Producing to Kafka and creating the public topics.

Every send waits for the broker's acknowledgement (``acks=all``) so a caller
that reports success - an HTTP 202, an offset commit - only does so once the
event is durably handed over. Every record carries the CloudEvents structured-mode
``content-type`` header (shared/binding.py). A failed send says whether it can pass
(``PublishError``) or never will (``PublishRejected``: shared/broker_errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared import metrics
from shared.binding import Headers, structured_headers
from shared.broker_errors import publish_failure_kind
from shared.codec import encode
from shared.envelope import Envelope
from shared.settings import CommonSettings
from shared.topics import PUBLIC_TOPICS, TopicSpec, topic_for

log = logging.getLogger(__name__)

SEND_TIMEOUT_MARGIN_S = 2.0
# readiness: one metadata round trip answers within this, and is reused for a while
BROKER_CHECK_TIMEOUT_S = 1.5
BROKER_CHECK_TTL_S = 3.0


class PublishError(RuntimeError):
    """The broker did not acknowledge an event (it is not durably handed over)."""

    permanent = False


class PublishRejected(PublishError):
    """The broker (or the producer before it) refused the send for what it is: too
    large, an invalid topic, not authorised. Sending it again gets the same answer."""

    permanent = True

    def __init__(self, message: str, *, topic: str, reason: str) -> None:
        super().__init__(message)
        self.topic = topic
        self.reason = reason  # the error class, e.g. MessageSizeTooLargeError


def publish_failure(exc: BaseException, topic: str) -> PublishError:
    """The ``PublishError`` a failed send to ``topic`` stands for."""
    if publish_failure_kind(exc) == "permanent":
        reason = type(exc).__name__
        return PublishRejected(f"{topic} refused the record: {reason}", topic=topic, reason=reason)
    return PublishError(f"broker did not acknowledge: {exc!r}")


@dataclass(frozen=True)
class Outgoing:
    """An event to publish, keyed by the entity whose order matters (the client; the
    chain on ``clinic.directory``).
    Its bytes are encoded once (``value``), or are the ones stored before (``encoded``:
    an outbox entry), so every send of one item carries the same record value."""

    key: str
    envelope: Envelope
    encoded: bytes | None = field(default=None, compare=False, repr=False)

    @cached_property
    def value(self) -> bytes:
        return self.encoded if self.encoded is not None else encode(self.envelope)

    @property
    def topic(self) -> str:
        return topic_for(self.envelope.type).name


class Publisher:
    """One producer per process; ``publish`` returns once the broker acknowledged."""

    def __init__(self, settings: CommonSettings, *, client_id: str, service: str = "") -> None:
        self._settings = settings
        self._service = service or client_id
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=client_id,
            acks="all",
            enable_idempotence=settings.kafka.enable_idempotence,
            # a batch expires (and fails) once the send timeout passes, so an event a
            # caller was told had failed is never delivered later by a retry in the client
            request_timeout_ms=int(settings.kafka.send_timeout_s * 1000),
            linger_ms=0,
            max_request_size=settings.kafka.max_message_bytes,
        )
        self.started = False
        self._broker_seen: tuple[float, bool] | None = None  # (monotonic time, reachable)
        self._broker_check: asyncio.Task[bool] | None = None

    @property
    def max_message_bytes(self) -> int:
        """The largest record this publisher sends."""
        return self._settings.kafka.max_message_bytes

    async def start(self) -> None:
        await self._producer.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        if self._broker_check is not None:
            self._broker_check.cancel()
        await self._producer.stop()

    async def publish(self, items: Iterable[Outgoing]) -> None:
        """Send every item with the sends in flight together and wait for every
        acknowledgement; the first failure in ``items`` order raises
        ``PublishRejected`` when it is permanent, else ``PublishError``.

        Records of one partition keep their order: the producer has one request in
        flight per broker and retries a failed one ahead of those behind it."""
        for failure in await self.publish_each(items):
            if failure is not None:
                raise failure

    async def publish_each(self, items: Iterable[Outgoing]) -> list[PublishError | None]:
        """Like ``publish``, but returns what became of each item (``None``: acknowledged)."""
        pending: list[Outgoing] = list(items)
        if not pending:
            return []
        sends: list[asyncio.Future[object] | PublishError] = []
        for item in pending:
            try:
                sends.append(
                    await self._producer.send(
                        item.topic,
                        key=item.key.encode(),
                        value=item.value,
                        headers=structured_headers(),
                    )
                )
            except KafkaError as exc:  # refused before it left: too large, unknown topic
                sends.append(publish_failure(exc, item.topic))
        futures = [send for send in sends if isinstance(send, asyncio.Future)]
        if futures:
            # a backstop: the batch's own expiry normally answers first
            await asyncio.wait(
                futures, timeout=self._settings.kafka.send_timeout_s + SEND_TIMEOUT_MARGIN_S
            )
        results: list[PublishError | None] = []
        for item, send in zip(pending, sends, strict=True):
            results.append(self._outcome(item, send))
        return results

    def _outcome(
        self, item: Outgoing, send: asyncio.Future[object] | PublishError
    ) -> PublishError | None:
        if isinstance(send, PublishError):
            return send
        if not send.done() or send.cancelled():
            send.cancel()
            return publish_failure(TimeoutError("no acknowledgement in time"), item.topic)
        failure = send.exception()
        if failure is not None:
            return publish_failure(failure, item.topic)
        metrics.published(self._service, item.topic, item.envelope)
        return None

    async def send_raw(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers
    ) -> tuple[int, int]:
        """Send a record exactly as it was (a dead letter replayed to its topic, with
        the headers ``binding.replay_headers`` restores); returns the partition and
        offset the broker gave it."""
        try:
            sent = await asyncio.wait_for(
                self._producer.send_and_wait(topic, key=key, value=value, headers=headers),
                timeout=self._settings.kafka.send_timeout_s + SEND_TIMEOUT_MARGIN_S,
            )
        except (KafkaError, TimeoutError) as exc:
            raise publish_failure(exc, topic) from exc
        return int(sent.partition), int(sent.offset)

    async def broker_reachable(self) -> bool:
        """Whether the broker answers a metadata request now (within
        ``BROKER_CHECK_TIMEOUT_S``); an answer is reused for ``BROKER_CHECK_TTL_S``,
        and callers asking at once share one round trip."""
        if not self.started:
            return False
        seen = self._broker_seen
        if seen is not None and time.monotonic() - seen[0] < BROKER_CHECK_TTL_S:
            return seen[1]
        if self._broker_check is None or self._broker_check.done():
            self._broker_check = asyncio.create_task(self._ask_broker())
        return await asyncio.shield(self._broker_check)

    async def _ask_broker(self) -> bool:
        try:
            # a fresh metadata round trip to a known broker; the client's own view is untouched
            await asyncio.wait_for(
                self._producer.client.fetch_all_metadata(), BROKER_CHECK_TIMEOUT_S
            )
            reachable = True
        except Exception as exc:  # whatever the reason, the answer is "not reachable"
            log.warning("broker not reachable: %r", exc)
            reachable = False
        self._broker_seen = (time.monotonic(), reachable)
        return reachable


async def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec] = PUBLIC_TOPICS) -> None:
    """Create the topics that do not exist yet (partitions, retention and cleanup
    policy from the registry)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=1,
                topic_configs=spec.topic_configs(),
            )
            for spec in specs
            if spec.name not in existing
        ]
        if missing:
            # another process may win the race to create a topic; it is there either way
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()
