"""What arming one notification stores and announces (pure: the client's contact,
``now`` and the channels in; the record and its event out).

A cause first decides a ``Draft``: what to send, to whom, when. With the client's
contact the draft becomes a ``Notice``: ``scheduled`` on the channel the client's
consent and the configured channels allow (stored with its timer), or
``suppressed`` with the reason, never dropped silently. A draft whose client has
no contact yet waits for one (services/notifier/waits.py). Its event id derives
from its own id, so arming it again (a redelivered cause) announces the same
event; the bytes first announced are stored with the record and are what a
redelivered cause republishes (services/notifier/arming.py)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from services.notifier.delivery import Contact, Route, Suppressed, route
from shared.envelope import Trace, derived_id
from shared.events import EventData, NotificationScheduled, NotificationSuppressed
from shared.vocabulary import Channel, NotificationKind

TOO_LATE = "too_late"
"""A reminder that can no longer go on time, and whose visit is too near for it to go late."""


@dataclass(frozen=True)
class Draft:
    """A notification a cause arms, decided but for its channel."""

    trace: Trace  # following the cause
    kind: NotificationKind
    notification_id: str
    client_id: str
    location_id: str
    due_at: datetime
    visit_id: str | None = None
    context: dict[str, Any] | None = None
    offset: str | None = None
    moved_for_quiet_hours: bool = False
    planned_due_at: datetime | None = None  # set on a reminder sent late: when it was due
    reason: str | None = None  # suppressed whoever the client is (``TOO_LATE``)

    @property
    def needs_contact(self) -> bool:
        """Whether the channel (or the reason it has none) depends on the contact."""
        return self.reason is None

    def for_client(self, client_id: str) -> Draft:
        return self if client_id == self.client_id else replace(self, client_id=client_id)

    def to_json(self) -> str:
        fields = asdict(self)
        fields["trace"] = self.trace.model_dump()
        for name in ("due_at", "planned_due_at"):
            value = getattr(self, name)
            fields[name] = None if value is None else value.isoformat()
        return json.dumps(fields)

    @classmethod
    def from_json(cls, raw: str) -> Draft:
        fields = json.loads(raw)
        fields["trace"] = Trace.model_validate(fields["trace"])
        for name in ("due_at", "planned_due_at"):
            if fields[name] is not None:
                fields[name] = datetime.fromisoformat(fields[name])
        return cls(**fields)


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
    draft: Draft,
    contact: Contact | None,
    *,
    configured: Collection[Channel],
    production: bool,
    now: datetime,
    provisional: Channel | None = None,
) -> Notice:
    """The notification ``draft`` arms for ``contact``: scheduled on the channel that
    carries it, or suppressed with the reason when none may (or when the draft
    carries a reason of its own). With ``provisional``, a client with no contact yet
    is scheduled on that channel: the send decides again with the contact then (a
    batch held for its grace period gives the intake time to arrive)."""
    way: Route | Suppressed = route(contact, configured=configured, production=production)
    channel: Channel = way.channel if isinstance(way, Route) else "console"
    reason = draft.reason or (way.reason if isinstance(way, Suppressed) else None)
    if contact is None and provisional is not None and draft.reason is None:
        channel, reason = provisional, None
    base: dict[str, Any] = {
        "notification_id": draft.notification_id,
        "client_id": draft.client_id,
        "location_id": draft.location_id,
        "visit_id": draft.visit_id,
        "kind": draft.kind,
        "channel": channel,
    }
    fact: EventData
    if reason is not None:
        fact = NotificationSuppressed(**base, reason=reason, suppressed_at=now)
    else:
        fact = NotificationScheduled(
            **base,
            due_at=draft.due_at,
            offset=draft.offset,
            moved_for_quiet_hours=draft.moved_for_quiet_hours,
            planned_due_at=draft.planned_due_at,
        )
    event_id = derived_id(fact.event_type, draft.notification_id)
    late = draft.planned_due_at
    record = {
        **base,
        "status": "suppressed" if reason is not None else "scheduled",
        "due_at": draft.due_at.isoformat(),
        "offset": draft.offset,
        "moved_for_quiet_hours": draft.moved_for_quiet_hours,
        "attempts": 0,
        "context": draft.context or {},
        "trace": {**draft.trace.model_dump(), "causationid": event_id},
        **({"planned_due_at": late.isoformat()} if late is not None else {}),
        **({"reason": reason} if reason is not None else {}),
    }
    return Notice(record=record, fact=fact, event_id=event_id, trace=draft.trace, at=now)
