"""Producing to Kafka and creating the public topics.

Every send waits for the broker's acknowledgement (``acks=all``) so a caller
that reports success - an HTTP 202, an offset commit - only does so once the
event is durably handed over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from shared import metrics
from shared.codec import encode
from shared.envelope import Envelope
from shared.settings import CommonSettings
from shared.topics import PUBLIC_TOPICS, TopicSpec, topic_for

log = logging.getLogger(__name__)

SEND_TIMEOUT_MARGIN_S = 2.0


class PublishError(RuntimeError):
    """The broker did not acknowledge an event (it is not durably handed over)."""


@dataclass(frozen=True)
class Outgoing:
    """An event to publish, keyed by the entity whose order matters (the client)."""

    key: str
    envelope: Envelope

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
        )
        self.started = False

    async def start(self) -> None:
        await self._producer.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        await self._producer.stop()

    async def publish(self, items: Iterable[Outgoing]) -> None:
        """Send in order and wait for every acknowledgement."""
        try:
            for item in items:
                await asyncio.wait_for(
                    self._producer.send_and_wait(
                        item.topic, key=item.key.encode(), value=encode(item.envelope)
                    ),
                    # a backstop: the batch's own expiry normally answers first
                    timeout=self._settings.kafka.send_timeout_s + SEND_TIMEOUT_MARGIN_S,
                )
                metrics.published(self._service, item.topic, item.envelope)
        except (KafkaError, TimeoutError) as exc:
            raise PublishError(f"broker did not acknowledge: {exc!r}") from exc

    async def send_raw(
        self, topic: str, *, key: bytes | None, value: bytes | None
    ) -> tuple[int, int]:
        """Send a record exactly as it was (a dead letter replayed to its topic);
        returns the partition and offset the broker gave it."""
        try:
            sent = await asyncio.wait_for(
                self._producer.send_and_wait(topic, key=key, value=value),
                timeout=self._settings.kafka.send_timeout_s + SEND_TIMEOUT_MARGIN_S,
            )
        except (KafkaError, TimeoutError) as exc:
            raise PublishError(f"broker did not acknowledge: {exc!r}") from exc
        return int(sent.partition), int(sent.offset)


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
