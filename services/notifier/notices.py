"""What arming one notification stores and announces (pure: the client's contact,
``now`` and the channels in; the record and its event out).

A notification the client's consent and the configured channels let through is
``scheduled`` (stored with its timer); one nothing may carry is ``suppressed`` at
once, with the reason, never dropped silently. Its event id derives from its own
id, so arming it again (a redelivered cause) announces the same event."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.notifier.delivery import Contact, Route, Suppressed, route
from shared.envelope import Envelope, Trace, derived_id
from shared.events import EventData, NotificationScheduled, NotificationSuppressed
from shared.vocabulary import Channel, NotificationKind


@dataclass(frozen=True)
class Notice:
    """One notification as the store keeps it (``record``) and as it is announced."""

    record: dict[str, Any]
    fact: EventData
    event_id: str
    trace: Trace
    at: datetime  # when it was armed: the announcement's time

    @property
    def due_epoch(self) -> float | None:
        """When its timer fires; None when it is closed already (suppressed)."""
        if self.record["status"] != "scheduled":
            return None
        return datetime.fromisoformat(self.record["due_at"]).timestamp()


def notice(
    cause: Envelope,
    contact: Contact | None,
    *,
    configured: Collection[Channel],
    production: bool,
    now: datetime,
    kind: NotificationKind,
    notification_id: str,
    client_id: str,
    location_id: str,
    due_at: datetime,
    visit_id: str | None = None,
    context: dict[str, Any] | None = None,
    offset: str | None = None,
    moved_for_quiet_hours: bool = False,
) -> Notice:
    """The notification ``cause`` arms for ``contact``: scheduled on the channel that
    carries it, or suppressed with the reason when none may."""
    way = route(contact, configured=configured, production=production)
    channel: Channel = way.channel if isinstance(way, Route) else "console"
    trace = Trace.following(cause, locationid=location_id)
    base: dict[str, Any] = {
        "notification_id": notification_id,
        "client_id": client_id,
        "location_id": location_id,
        "visit_id": visit_id,
        "kind": kind,
        "channel": channel,
    }
    fact: EventData
    if isinstance(way, Suppressed):
        fact = NotificationSuppressed(**base, reason=way.reason, suppressed_at=now)
    else:
        fact = NotificationScheduled(
            **base, due_at=due_at, offset=offset, moved_for_quiet_hours=moved_for_quiet_hours
        )
    event_id = derived_id(fact.event_type, notification_id)
    record = {
        **base,
        "status": "suppressed" if isinstance(way, Suppressed) else "scheduled",
        "due_at": due_at.isoformat(),
        "offset": offset,
        "moved_for_quiet_hours": moved_for_quiet_hours,
        "attempts": 0,
        "context": context or {},
        "trace": {**trace.model_dump(), "causationid": event_id},
        **({"reason": way.reason} if isinstance(way, Suppressed) else {}),
    }
    return Notice(record=record, fact=fact, event_id=event_id, trace=trace, at=now)
