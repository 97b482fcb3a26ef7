"""Consumer lag per partition, as the instance that owns the partition sees it:
the partition's end offset minus the first offset it has not finished (the
record in hand, if one is). A stuck handler shows as lag that grows while the
producers go on. A partition this instance has not started a record of yet
counts from the group's committed offset, else from the partition's start:
the consumer's fetch position would not do, as it runs ahead into its buffer."""

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
    """Lag for each partition with a known end, never below zero; a partition
    missing from ``next_offsets`` has no lag."""
    return {tp: max(0, end - next_offsets.get(tp, end)) for tp, end in end_offsets.items()}


async def report_lag(
    app: faust.App,
    processor: StreamProcessor,
    topics: set[str],
    *,
    every_s: float | None = None,
) -> None:
    """Refresh ``clinicflow_consumer_lag`` for the assigned partitions until cancelled,
    every ``every_s`` seconds (default ``LAG_INTERVAL_S``)."""
    shown: set[tuple[str, int]] = set()
    while True:
        try:
            shown = await _refresh(app, processor, topics, shown)
        except Exception as exc:  # the broker may be away; the next round tries again
            log.warning("consumer lag not read: %r", exc)
        await asyncio.sleep(every_s if every_s is not None else LAG_INTERVAL_S)


async def _refresh(
    app: faust.App, processor: StreamProcessor, topics: set[str], shown: set[tuple[str, int]]
) -> set[tuple[str, int]]:
    consumer = app.consumer
    assigned = [tp for tp in consumer.assignment() if tp.topic in topics]
    ends = await consumer.highwaters(*assigned) if assigned else {}
    next_offsets = dict(processor.next_offsets)
    untouched = [tp for tp in assigned if (tp.topic, tp.partition) not in next_offsets]
    if untouched:
        # faust keeps the group's committed offsets (the next to read) as it commits
        committed = getattr(consumer, "_committed_offset", {})
        starts = await consumer.earliest_offsets(*untouched)
        for tp in untouched:
            found = committed.get(tp)
            next_offsets[(tp.topic, tp.partition)] = found if found else starts.get(tp, 0)
    lags = lag_of({(tp.topic, tp.partition): end for tp, end in ends.items()}, next_offsets)
    for (topic, partition), lag in lags.items():
        CONSUMER_LAG.labels(processor.service, topic, str(partition)).set(lag)
    for topic, partition in shown - set(lags):  # moved to another instance
        CONSUMER_LAG.remove(processor.service, topic, str(partition))
    return set(lags)
