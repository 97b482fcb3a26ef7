"""``clinicflow topics``: the public topics as the registry (``shared/topics.py``)
declares them, against what a broker has - and, with ``--create``, the missing
ones created with the registry's partitions, retention and cleanup policy."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from shared.kafka import ensure_topics
from shared.topics import PUBLIC_TOPICS, TopicSpec


@dataclass(frozen=True)
class TopicState:
    spec: TopicSpec
    partitions: int | None  # None: the broker does not have it

    @property
    def problem(self) -> str | None:
        if self.partitions is None:
            return "missing (clinicflow topics --create)"
        if self.partitions < self.spec.partitions:
            return f"{self.partitions} partitions, the registry wants {self.spec.partitions}"
        return None


async def broker_topics(bootstrap: str) -> list[TopicState]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    try:
        await consumer.start()
        await consumer.topics()  # fetches the cluster's metadata
        return [
            TopicState(
                spec, len(found) if (found := consumer.partitions_for_topic(spec.name)) else None
            )
            for spec in PUBLIC_TOPICS
        ]
    finally:
        await consumer.stop()


def report(states: list[TopicState]) -> list[str]:
    """One line per topic: name, key, partitions (found/wanted), retention, cleanup
    policy, event types."""
    lines = []
    for state in states:
        spec = state.spec
        found = "-" if state.partitions is None else str(state.partitions)
        line = (
            f"{spec.name:<22} key={spec.key:<12} partitions={found}/{spec.partitions:<3} "
            f"retention={spec.retention_days}d cleanup={spec.cleanup_policy}  "
            f"{', '.join(spec.event_types)}"
        )
        lines.append(line + (f"  <- {state.problem}" if state.problem else ""))
    return lines


async def run(bootstrap: str, *, create: bool) -> tuple[int, list[str]]:
    """Exit status (0: every topic is there as declared) and the report."""
    if create:
        await ensure_topics(bootstrap)
    states = await broker_topics(bootstrap)
    return (1 if any(s.problem for s in states) else 0), report(states)
