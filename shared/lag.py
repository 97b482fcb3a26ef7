"""Consumer lag per partition, as the instance that owns the partition sees it:
the partition's end offset minus the offset after the last record it finished.
A stuck handler shows as lag that grows while the producers go on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import faust

from shared.metrics import CONSUMER_LAG
from shared.streams import StreamProcessor

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 5.0


def lag_of(
    end_offsets: Mapping[tuple[str, int], int], next_offsets: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Lag for each partition with a known end; a partition this instance has
    not finished a record of yet counts from its committed position (given in
    ``next_offsets`` by the caller), never below zero."""
    return {tp: max(0, end - next_offsets.get(tp, end)) for tp, end in end_offsets.items()}


async def report_lag(
    app: faust.App,
    processor: StreamProcessor,
    topics: set[str],
    *,
    every_s: float = LAG_INTERVAL_S,
) -> None:
    """Refresh ``clinicflow_consumer_lag`` for the assigned partitions until cancelled."""
    shown: set[tuple[str, int]] = set()
    while True:
        try:
            shown = await _refresh(app, processor, topics, shown)
        except Exception as exc:  # the broker may be away; the next round tries again
            log.warning("consumer lag not read: %r", exc)
        await asyncio.sleep(every_s)


async def _refresh(
    app: faust.App, processor: StreamProcessor, topics: set[str], shown: set[tuple[str, int]]
) -> set[tuple[str, int]]:
    consumer = app.consumer
    assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
    ends = await consumer.highwaters(*assigned) if assigned else {}
    next_offsets = dict(processor.next_offsets)
    for tp in assigned:
        if (tp.topic, tp.partition) not in next_offsets:
            position = await consumer.position(tp)
            if position is not None:
                next_offsets[(tp.topic, tp.partition)] = position
    lags = lag_of({(tp.topic, tp.partition): end for tp, end in ends.items()}, next_offsets)
    for (topic, partition), lag in lags.items():
        CONSUMER_LAG.labels(processor.service, topic, str(partition)).set(lag)
    for topic, partition in shown - set(lags):  # moved to another instance
        CONSUMER_LAG.remove(processor.service, topic, str(partition))
    return set(lags)
