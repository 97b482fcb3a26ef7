"""The public topics (DESIGN.md "Topics and events"): name, key, partitions,
event types, retention and cleanup policy. The record key is ``client_id`` on
every public topic so one client's events stay in order, except on
``clinic.directory``: the directory belongs to the chain, so its records are keyed
by the chain id (one key keeps its changes in order). ``clinic.deadletter`` keeps
the key of the record that failed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    """One topic as every deployment creates it (``ensure_topics``, the compose
    topic-init service, the Kubernetes topic-init Job).

    ``cleanup_policy`` is Kafka's ``cleanup.policy``. The public topics are event
    logs (keyed by client, or by chain for the directory), so they are ``delete``
    (old segments expire after the retention): ``compact`` would keep only the
    latest record per key and drop a client's earlier events, or every directory
    change but the last.
    """

    name: str
    key: str
    partitions: int
    event_types: tuple[str, ...]
    retention_days: int = 365
    description: str = ""
    cleanup_policy: str = "delete"

    @property
    def retention_ms(self) -> int:
        """``retention.ms`` as the broker takes it."""
        return self.retention_days * 86_400_000

    def topic_configs(self) -> dict[str, str]:
        """The topic-level configs a topic is created with."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}


INTAKE = TopicSpec(
    name="clinic.intake",
    key="client_id",
    partitions=6,
    event_types=(
        "intake.submitted",
        "assessment.recorded",
        "client.merged",
        "client.updated",
        "medical_check.recorded",
    ),
    description="Intakes submitted at the front desk or by integrations; therapist "
    "assessments and the doctor's checks red flags ask for.",
)
PLANS = TopicSpec(
    name="clinic.plans",
    key="client_id",
    partitions=6,
    event_types=("plan.created", "plan.revised", "plan.declined", "plan.completed"),
    description="Treatment plans and their revisions.",
)
VISITS = TopicSpec(
    name="clinic.visits",
    key="client_id",
    partitions=6,
    event_types=(
        "visit.booked",
        "visit.rescheduled",
        "visit.cancelled",
        "visit.completed",
        "visit.no_show",
        "visit.confirmed",
        "booking.waitlisted",
        "waitlist.offered",
    ),
    description="Visits booked from plans and what happened to them.",
)
NOTIFICATIONS = TopicSpec(
    name="clinic.notifications",
    key="client_id",
    partitions=6,
    event_types=(
        "notification.scheduled",
        "notification.sent",
        "notification.failed",
        "notification.cancelled",
        "notification.suppressed",
        "checkin.replied",
        "reply.received",
    ),
    description="Messages to clients: scheduled, sent, failed, cancelled, suppressed.",
)
DIRECTORY = TopicSpec(
    name="clinic.directory",
    key="chain_id",
    partitions=1,
    event_types=(
        "directory.hours_set",
        "directory.exception_added",
        "directory.exception_removed",
        "directory.closure_added",
        "directory.closure_removed",
        "directory.policy_set",
    ),
    retention_days=3650,
    description="The chain's staff-and-location directory: therapist hours per location, "
    "time off and other exceptions, closures and holiday hours, the staff policy.",
)
DEADLETTER = TopicSpec(
    name="clinic.deadletter",
    key="client_id",
    partitions=1,
    event_types=("record.deadlettered",),
    retention_days=30,
    description="Records a consumer could not process, with the reason.",
)

PUBLIC_TOPICS: tuple[TopicSpec, ...] = (
    INTAKE,
    PLANS,
    VISITS,
    NOTIFICATIONS,
    DIRECTORY,
    DEADLETTER,
)


def topic_for(event_type: str) -> TopicSpec:
    """The public topic an event type is published on."""
    for spec in PUBLIC_TOPICS:
        if event_type in spec.event_types:
            return spec
    raise KeyError(f"no public topic carries {event_type!r}")
