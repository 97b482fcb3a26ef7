"""Messages waiting for a contact: the notifier reads ``clinic.intake`` and the
plan and visit topics with separate consumers, so a plan or a booking can come
before the client's intake. What it arms then waits (``Writes.wait``) for up to
the policy's ``contact_wait``:

- the contact arrives (``intake.submitted``, ``client.updated``, a merge bringing
  one): what waits for the client is released with it, in due order, and
  announced as usual (``notification.scheduled`` on its channel, or
  ``notification.suppressed`` with the real reason); whatever fell due meanwhile
  goes as ``Arming.as_of`` says;
- the wait ends first: ``ended`` releases it with the contact known then, which
  is none: ``notification.suppressed`` ``no_contact_data``.

Everything is in Redis (services/notifier/wait_scripts.py), so a restart keeps
the waits and their timer. A wait ends once (the release script deletes it and
arms the record together), and its announcement is staged in the notifier's
outbox in the same script, so it reaches the broker even if the process dies
right after (the relay publishes it again, the same bytes: shared/outbox.py); a
redelivered cause finds nothing waiting and releases nothing twice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from services.notifier.arming import Arming
from services.notifier.delivery import Contact
from services.notifier.notices import Draft
from shared.kafka import Outgoing
from shared.outbox import Outbox, entry_of, epoch_ms, relay
from shared.runtime import Runtime
from shared.vocabulary import Channel

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 0.2  # real seconds between looks at the waits' timer
SWEEP_BATCH = 100


class Waits:
    def __init__(self, arming: Arming) -> None:
        self.arming = arming
        runtime = arming.runtime
        self.outbox = Outbox(runtime.redis, runtime.keys, service=runtime.service)

    async def release(
        self, found: Sequence[str], contact: Contact | None, *, client_id: str
    ) -> list[Outgoing]:
        """Release the waiting ``found`` drafts of ``client_id`` with ``contact`` (None:
        the wait ended with none known), announce what this call released."""
        drafts = sorted((Draft.from_json(raw) for raw in found), key=_armed_order)
        if not drafts:
            return []
        now = self.arming.runtime.clock.now()
        writes = self.arming.store.writes()
        announced = []
        score = epoch_ms()
        for draft in drafts:
            goes = self.arming.as_of(draft.for_client(client_id), contact, now=now)
            armed = self.arming.notice(goes, contact, now=now)
            record, outgoing = self.arming.stored(armed)
            writes.release(
                record,
                waited_as=draft.client_id,
                due_epoch=armed.due_epoch,
                logged_epoch=time.time(),
                entry=(outgoing.envelope.id, entry_of(outgoing)),
                outbox_score=score,
            )
            announced.append(outgoing)
        outcome = await writes.commit()
        released = [o for o, done in zip(announced, outcome.released, strict=True) if done]
        if released:
            await self.outbox.publish_stored(self.arming.runtime.publisher, released)
        return released

    async def ended(self) -> int:
        """Release the drafts whose wait has ended, each with its client's contact now
        (none, unless one came by a way that did not release it); how many."""
        runtime = self.arming.runtime
        now = runtime.clock.now()
        writes = self.arming.store.writes()
        writes.ended(now_epoch=now.timestamp(), limit=SWEEP_BATCH)
        found = (await writes.commit()).found
        drafts = [Draft.from_json(raw) for raw in found]
        reach = await self.arming.store.reach([d.client_id for d in drafts])
        released = 0
        for client_id in dict.fromkeys(d.client_id for d in drafts):
            who = reach[client_id]
            mine = [raw for raw, d in zip(found, drafts, strict=True) if d.client_id == client_id]
            released += len(await self.release(mine, who.contact, client_id=who.client_id))
        return released


def _armed_order(draft: Draft) -> tuple[str, str]:
    return (draft.due_at.isoformat(), draft.notification_id)


async def tend_waits(runtime: Runtime, configured: frozenset[Channel]) -> None:
    """End the waits whose time is up, and relay what a release staged but did not
    publish, until cancelled (a background task of the notifier)."""
    waits = Waits(Arming(runtime, configured))

    async def sweep() -> None:
        while True:
            try:
                await waits.ended()
            except Exception:  # the next round retries: nothing is lost in Redis
                log.exception("contact waits: a sweep failed")
            await asyncio.sleep(SWEEP_INTERVAL_S)

    await asyncio.gather(sweep(), relay(waits.outbox, runtime.publisher))
