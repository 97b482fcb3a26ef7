"""A faust app tuned for the configured broker.

faust-streaming fixes the worker consumer's ``fetch_max_wait_ms`` at 1500 ms.
Tansu does not wake a waiting fetch when data arrives, so every hop would take
that long; the transport below applies ``KAFKA_FETCH_MAX_WAIT_MS`` instead, and
paces it once the consumer is idle (shared/fetch_pacing.py).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_kafka

from shared.fetch_pacing import pace_fetches
from shared.settings import CommonSettings

COMMIT_INTERVAL_S = 0.5
COMMIT_EVERY_NEVER = 2**31  # the per-count commit in faust's fetch loop never triggers


class _ConsumerThread(faust_kafka.AIOKafkaConsumerThread):
    async def on_start(self) -> None:
        await super().on_start()
        if not self.app.client_only:
            pace_fetches(self._consumer, self.app.conf.clinicflow_kafka)

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its fetcher
        consumer._fetch_max_wait_ms = self.app.conf.clinicflow_kafka.fetch_max_wait_ms
        return consumer


class _Consumer(faust_kafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_kafka.Transport):
    Consumer = _Consumer


class TunedApp(faust.App):
    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


def create_faust_app(service: str, settings: CommonSettings) -> faust.App:
    """The faust app of one service: consumer group ``clinicflow-<service>``, raw values."""
    kafka = settings.kafka
    app = TunedApp(
        f"clinicflow-{service}",
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_rebalance_timeout=kafka.rebalance_timeout_s,
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        broker_request_timeout=max(kafka.request_timeout_s, kafka.session_timeout_s),
        # offsets are committed by the timer alone, of records the stream processor
        # acknowledged (shared/streams.py): one commit per interval, not per record
        broker_commit_every=COMMIT_EVERY_NEVER,
        broker_commit_interval=COMMIT_INTERVAL_S,
        topic_allow_declare=False,
        store="memory://",
    )
    app.conf.clinicflow_kafka = kafka
    return app
