"""A client's answer to a check-in becomes ``checkin.replied``, which the planner
and other services can use. The first answer to a check-in is kept; every time
it is given again the same event (same id) is published again, so an answer
whose event the broker did not take is never lost, and never counted twice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.notifier.delivery import Contact
from services.notifier.store import NotificationStore
from shared.envelope import Trace, derived_id
from shared.events import CheckinReplied
from shared.routes import publish_or_503
from shared.runtime import Runtime
from shared.vocabulary import Channel


@dataclass(frozen=True)
class Answer:
    pain: int
    replied_at: datetime


async def record_reply(
    runtime: Runtime,
    contact: Contact,
    *,
    pain: int,
    channel: Channel,
    notification: dict[str, Any] | None = None,
    reply_id: str | None = None,
) -> Answer | None:
    """Keep and publish the answer to ``notification`` (by default the client's
    latest check-in); None when there is no check-in to answer."""
    store = NotificationStore(runtime.redis, runtime.keys)
    if notification is None:
        latest = await store.recall("checkin", contact.client_id)
        notification = await store.get(latest["notification_id"]) if latest else None
    if notification is None or notification["kind"] != "checkin":
        return None
    notification_id = notification["notification_id"]
    now = runtime.clock.now()
    first: dict[str, Any] = {
        "pain": pain,
        "replied_at": now.isoformat(),
        "channel": channel,
        "via": reply_id,
    }
    kept = await runtime.redis.set(
        runtime.keys("reply", notification_id), json.dumps(first), nx=True
    )
    stored = first if kept else await store.recall("reply", notification_id) or first
    answer = Answer(
        pain=int(stored["pain"]), replied_at=datetime.fromisoformat(stored["replied_at"])
    )
    if answer.pain != pain:
        return answer  # another answer came first; it stands (and was published then)
    context = notification.get("context") or {}
    fact = CheckinReplied(
        notification_id=notification_id,
        client_id=contact.client_id,
        location_id=notification["location_id"],
        visit_id=notification.get("visit_id"),
        plan_id=context.get("plan_id"),
        pain=answer.pain,
        channel=stored["channel"],
        replied_at=answer.replied_at,
    )
    trace = Trace.model_validate(notification["trace"])
    event = runtime.outgoing(
        fact,
        key=contact.client_id,
        subject=notification_id,
        event_id=derived_id(fact.event_type, notification_id),
        trace=trace.model_copy(update={"causationid": None}),
        time=answer.replied_at,
    )
    await publish_or_503(runtime, [event], "the answer is kept; the broker did not take it yet")
    return answer
