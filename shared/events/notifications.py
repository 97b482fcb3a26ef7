"""Events of ``clinic.notifications``: the life of one message to a client."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from shared.events.base import EventData
from shared.vocabulary import SUPPRESSION_REASONS, Channel, NotificationKind, ReplyIntent


class NotificationFacts(EventData):
    notification_id: str
    client_id: str
    location_id: str
    visit_id: str | None = None
    kind: NotificationKind
    channel: Channel


class NotificationScheduled(NotificationFacts):
    event_type = "notification.scheduled"

    due_at: AwareDatetime
    offset: str | None = None
    moved_for_quiet_hours: bool = False
    planned_due_at: AwareDatetime | None = Field(
        default=None,
        description="only on a reminder sent late: when it was due (it goes at due_at)",
    )


class NotificationSent(NotificationFacts):
    event_type = "notification.sent"

    due_at: AwareDatetime
    sent_at: AwareDatetime


class NotificationFailed(NotificationFacts):
    event_type = "notification.failed"

    reason: str
    attempts: int = 1
    failed_at: AwareDatetime


class NotificationCancelled(NotificationFacts):
    event_type = "notification.cancelled"

    reason: str
    cancelled_at: AwareDatetime


class NotificationSuppressed(NotificationFacts):
    event_type = "notification.suppressed"

    reason: str = Field(description="one of " + ", ".join(SUPPRESSION_REASONS))
    suppressed_at: AwareDatetime


class CheckinReplied(EventData):
    """The client's answer to a check-in: the pain they feel now, 0-10."""

    event_type = "checkin.replied"

    notification_id: str
    client_id: str
    location_id: str
    visit_id: str | None = None
    plan_id: str | None = None
    pain: int = Field(ge=0, le=10)
    channel: Channel
    replied_at: AwareDatetime


class ReplyReceived(EventData):
    """A text a client sent us and what it asked for. The text itself is not carried
    (it may say anything about the client's health): the front desk reads it in the
    notifier's list of replies. ``confirm`` names the visit it confirms, which the
    scheduler confirms (``visit.confirmed``)."""

    event_type = "reply.received"

    reply_id: str
    client_id: str
    location_id: str
    channel: Channel
    intent: ReplyIntent
    visit_id: str | None = Field(default=None, description="with intent confirm")
    received_at: AwareDatetime
