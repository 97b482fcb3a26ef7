"""Events of HTTP commands travel through an outbox: written by the same script as
the calendar change (``store.CalendarChange.outbox``), published right after,
and re-published by ``relay`` until the broker acknowledges them. A command the
scheduler accepted is never lost because the broker was down at that moment;
its events carry ids derived from the command, so a second delivery is a
duplicate consumers already skip."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from services.scheduler.store import CalendarStore
from shared.kafka import Outgoing, PublishError
from shared.outbox import Outbox, entry_of, item_of
from shared.outbox import relay as relay_outbox
from shared.runtime import Runtime

log = logging.getLogger(__name__)

RELAY_INTERVAL_S = 1.0


def staged(items: Sequence[Outgoing]) -> dict[str, str]:
    """The outbox entries for ``items``, by event id (shared/outbox.py's format, which
    its relay reads)."""
    return {item.envelope.id: entry_of(item) for item in items}


unstaged = item_of


async def deliver(runtime: Runtime, store: CalendarStore, items: Sequence[Outgoing]) -> bool:
    """Publish now; False when the broker did not acknowledge (the relay retries)."""
    try:
        await runtime.publisher.publish(items)
    except PublishError as exc:
        log.warning("outbox: %d event(s) left for the relay: %s", len(items), exc)
        return False
    await store.delivered([item.envelope.id for item in items])
    return True


async def relay(runtime: Runtime) -> None:
    """Publish what is still in the outbox, oldest first, until the service stops; an
    event the broker refuses for good is parked, not retried (shared/outbox.py)."""
    # the calendar script stages as shared/outbox.py does (real-clock ms), so the
    # relay's grace period leaves an event to the command or offer publishing it
    outbox = Outbox(runtime.redis, runtime.keys, service=runtime.service)
    await relay_outbox(outbox, runtime.publisher, interval_s=RELAY_INTERVAL_S)
