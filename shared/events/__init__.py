"""Event data models for every public event type, keyed by CloudEvents ``type``."""

from shared.events.base import EventData, Part
from shared.events.deadletter import RecordDeadLettered
from shared.events.intake import (
    AssessmentRecorded,
    ClientMerged,
    ClientUpdated,
    IntakeDocument,
    IntakeSubmitted,
    MedicalCheckRecorded,
)
from shared.events.notifications import (
    CheckinReplied,
    NotificationCancelled,
    NotificationFailed,
    NotificationScheduled,
    NotificationSent,
    NotificationSuppressed,
    ReplyReceived,
)
from shared.events.plans import PlanCompleted, PlanCreated, PlanDeclined, PlanRevised
from shared.events.visits import (
    BookingWaitlisted,
    VisitBooked,
    VisitCancelled,
    VisitCompleted,
    VisitConfirmed,
    VisitNoShow,
    VisitRescheduled,
    WaitlistOffered,
)

EVENT_MODELS: dict[str, type[EventData]] = {
    model.event_type: model
    for model in (
        IntakeSubmitted,
        AssessmentRecorded,
        ClientMerged,
        ClientUpdated,
        MedicalCheckRecorded,
        PlanCreated,
        PlanRevised,
        PlanDeclined,
        PlanCompleted,
        VisitBooked,
        VisitRescheduled,
        VisitCancelled,
        VisitCompleted,
        VisitNoShow,
        VisitConfirmed,
        BookingWaitlisted,
        WaitlistOffered,
        NotificationScheduled,
        NotificationSent,
        NotificationFailed,
        NotificationCancelled,
        NotificationSuppressed,
        CheckinReplied,
        ReplyReceived,
        RecordDeadLettered,
    )
}

__all__ = [
    "EVENT_MODELS",
    "AssessmentRecorded",
    "BookingWaitlisted",
    "CheckinReplied",
    "ClientMerged",
    "ClientUpdated",
    "EventData",
    "IntakeDocument",
    "IntakeSubmitted",
    "MedicalCheckRecorded",
    "NotificationCancelled",
    "NotificationFailed",
    "NotificationScheduled",
    "NotificationSent",
    "NotificationSuppressed",
    "Part",
    "PlanCompleted",
    "PlanCreated",
    "PlanDeclined",
    "PlanRevised",
    "RecordDeadLettered",
    "ReplyReceived",
    "VisitBooked",
    "VisitCancelled",
    "VisitCompleted",
    "VisitConfirmed",
    "VisitNoShow",
    "VisitRescheduled",
    "WaitlistOffered",
]
