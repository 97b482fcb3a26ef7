"""The notifier's send path against a real SMTP server, a real webhook receiver, real
Redis and the real broker: at most one send per message, also when its sender dies
in the middle of one; sends side by side over reused SMTP sessions; a claim that
stays with a live sender however long its send takes, and comes back at once from
one that stops.

Notifications are stored and armed directly (the arming side has tests of its own),
and dispatchers run for real on a settable clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.notifier.attempts import begun
from services.notifier.channels import channels_from, close_channels
from services.notifier.delivery import Consent, Contact
from services.notifier.dispatcher import Dispatcher
from services.notifier.store import NotificationStore
from shared.infra import Infra
from shared.runtime import Foundations, Runtime, running
from shared.service import stopped
from shared.settings import NotifierSettings
from tests.conftest import DEMO_CHAIN
from tests.integration.test_notifier_flow import START
from tests.notifier_fakes import SmtpFake, WebhookReceiver, silent_server
from tests.support import SettableClock, TopicLog, until

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789"


@dataclass
class Sender:
    runtime: Runtime
    settings: NotifierSettings
    clock: SettableClock
    store: NotificationStore

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(self.runtime, self.settings, channels_from(self.settings))

    async def client(self, n: str) -> str:
        """A client who takes e-mail; their id."""
        client_id = f"client-{n}-{uuid.uuid4().hex[:6]}"
        contact = Contact(
            client_id=client_id,
            location_id="beaverton",
            email=f"{client_id}@example.com",
            consent=Consent(email=True),
        )
        await self.store.save_contact(contact)
        return client_id

    async def reminder(self, client_id: str, *, due_at: datetime, visit_start: datetime) -> str:
        """A reminder of a visit, due at ``due_at``; its id."""
        context = {"visit_start": visit_start.isoformat()}
        return await self._armed(client_id, "reminder", due_at, context, offset="2h")

    async def due(self, client_id: str, n: int) -> list[str]:
        """``n`` aftercare notifications of the client, due now; their ids."""
        now = self.clock.now()
        context = {"completed_at": now.isoformat()}
        return [await self._armed(client_id, "aftercare", now, context) for _ in range(n)]

    async def _armed(
        self,
        client_id: str,
        kind: str,
        due_at: datetime,
        context: dict[str, Any],
        *,
        offset: str | None = None,
    ) -> str:
        """A notification stored and armed as the arming side leaves it; its id."""
        notification_id = f"{kind}-{client_id}-{uuid.uuid4().hex[:8]}"
        record = {
            "notification_id": notification_id,
            "client_id": client_id,
            "location_id": "beaverton",
            "visit_id": f"visit-{notification_id}",
            "kind": kind,
            "channel": "email",
            "status": "scheduled",
            "due_at": due_at.isoformat(),
            "offset": offset,
            "moved_for_quiet_hours": False,
            "attempts": 0,
            "context": context,
            "trace": {"chainid": "northwest-nmt", "correlationid": client_id},
        }
        assert await self.store.schedule(record, due_epoch=due_at.timestamp())
        return notification_id

    async def status(self, notification_id: str) -> dict[str, Any]:
        record = await self.store.get(notification_id)
        assert record is not None
        return record


@asynccontextmanager
async def sender_on(infra: Infra, **env: Any) -> AsyncIterator[Sender]:
    settings = NotifierSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"test-sends-{uuid.uuid4().hex[:8]}",
        CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
        CLINICFLOW_ENV="test",
        NOTIFIER_POLL_INTERVAL_S=0.05,
        NOTIFIER_EMAIL_FROM="care@northwest-nmt.example",
        NOTIFIER_CLIENT_MAX_PER_HOUR=1000,
        **env,
    )
    async with running(Foundations.load("notifier", settings)) as runtime:
        clock = SettableClock(START)
        runtime.base.clock = clock
        yield Sender(runtime, settings, clock, NotificationStore(runtime.redis, runtime.keys))


def smtp_env(smtp: SmtpFake, **env: Any) -> dict[str, Any]:
    return {
        "NOTIFIER_SMTP_HOST": smtp.host,
        "NOTIFIER_SMTP_PORT": smtp.port,
        "NOTIFIER_SMTP_SECURITY": "none",
        **env,
    }


@asynccontextmanager
async def dispatching(dispatcher: Dispatcher) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(dispatcher.run())
    try:
        yield task
    finally:
        task.cancel()
        # cancelled again while it runs, as the service stops it (a Redis call can
        # swallow one cancellation)
        await asyncio.wait_for(stopped(task), 10)
        await close_channels(dispatcher.channels)


def unknown_outcomes(channel: str) -> float:
    value = REGISTRY.get_sample_value(
        "clinicflow_notification_outcomes_unknown_total",
        {"service": "notifier", "channel": channel},
    )
    return value or 0.0


async def armed(sender: Sender, notification_id: str) -> bool:
    """Whether the notification waits in the due queue or is claimed by a sender."""
    redis, keys = sender.runtime.redis, sender.runtime.keys
    scores = [await redis.zscore(keys(queue), notification_id) for queue in ("due", "inflight")]
    return any(score is not None for score in scores)


async def died_while_sending(sender: Sender, notification_id: str, *, channel: str) -> None:
    """Leave ``notification_id`` as a sender killed mid-send leaves it: recorded as
    ``sending``, its claim's lease run out."""
    store = sender.store
    due = sender.clock.now().timestamp()
    assert await store.claim_due(now_epoch=due, lease_s=0.05) == [notification_id]
    record = await sender.status(notification_id)
    assert await store.move(
        begun(record, channel=channel, at=sender.clock.now()), expected="scheduled"
    )


async def test_a_send_its_sender_died_in_is_failed_as_unknown_and_never_repeated(
    infra: Infra, topics: TopicLog
) -> None:
    before = unknown_outcomes("email")
    async with SmtpFake() as smtp, sender_on(infra, **smtp_env(smtp)) as sender:
        client_id = await sender.client("died")
        [notification_id] = await sender.due(client_id, 1)
        await died_while_sending(sender, notification_id, channel="email")
        async with dispatching(sender.dispatcher()):

            async def closed() -> dict[str, Any] | None:
                record = await sender.status(notification_id)
                return record if record["status"] != "sending" else None

            record = await until(closed)
            failed = await topics.wait_for(
                lambda: topics.for_client("notification.failed", client_id)
            )
        assert record["status"] == "failed" and record["reason"] == "outcome_unknown"
        assert not await armed(sender, notification_id)  # no timer left to send it again
        assert failed[0]["data"]["reason"] == "outcome_unknown"
        dead = await topics.wait_for(
            lambda: [
                e
                for e in topics.events(type="record.deadlettered")
                if e["subject"] == notification_id
            ]
        )
        assert "outcome_unknown" in dead[0]["data"]["error"]
        assert smtp.received == []  # never sent again
        assert unknown_outcomes("email") == before + 1


async def test_where_the_provider_drops_repeats_a_send_of_unknown_outcome_goes_again(
    infra: Infra,
) -> None:
    async with (
        WebhookReceiver() as receiver,
        sender_on(
            infra, NOTIFIER_WEBHOOK_URL=receiver.url, NOTIFIER_WEBHOOK_SECRET=WEBHOOK_SECRET
        ) as sender,
    ):
        client_id = await sender.client("hook")
        [notification_id] = await sender.due(client_id, 1)
        await died_while_sending(sender, notification_id, channel="webhook")
        async with dispatching(sender.dispatcher()):
            posts = await receiver.wait_for_posts(1)

            async def sent() -> dict[str, Any] | None:
                record = await sender.status(notification_id)
                return record if record["status"] == "sent" else None

            record = await until(sent)
        assert posts[0].headers["idempotency-key"] == notification_id
        assert record["last_error"] == "outcome_unknown" and len(receiver.posts) == 1


async def test_a_timeout_after_the_message_went_out_is_not_retried(infra: Infra) -> None:
    async with (
        SmtpFake(answer_after_s=8) as smtp,
        sender_on(infra, **smtp_env(smtp, NOTIFIER_SMTP_TIMEOUT_S=2)) as sender,
    ):
        client_id = await sender.client("silent-after-data")
        [notification_id] = await sender.due(client_id, 1)
        async with dispatching(sender.dispatcher()):

            async def closed() -> dict[str, Any] | None:
                record = await sender.status(notification_id)
                return record if record["status"] not in ("scheduled", "sending") else None

            record = await until(closed)
        assert record["status"] == "failed" and record["reason"] == "outcome_unknown"
        assert not await armed(sender, notification_id)
        assert len(smtp.received) == 1  # the server has it: sending it again would double it


async def test_a_timeout_before_anything_went_out_is_retried(infra: Infra) -> None:
    async with silent_server() as port:
        env = {"NOTIFIER_SMTP_HOST": "127.0.0.1", "NOTIFIER_SMTP_PORT": port}
        async with sender_on(
            infra, NOTIFIER_SMTP_SECURITY="none", NOTIFIER_SMTP_TIMEOUT_S=0.3, **env
        ) as sender:
            client_id = await sender.client("silent-greeting")
            [notification_id] = await sender.due(client_id, 1)
            async with dispatching(sender.dispatcher()):

                async def waiting() -> dict[str, Any] | None:
                    record = await sender.status(notification_id)
                    return record if record["attempts"] == 1 else None

                record = await until(waiting)
    assert record["status"] == "scheduled" and record["last_error"] == "smtp: timed out"


async def test_sends_run_side_by_side_over_reused_sessions(infra: Infra) -> None:
    async with (
        SmtpFake(answer_after_s=0.3) as smtp,
        sender_on(infra, **smtp_env(smtp, NOTIFIER_SEND_CONCURRENCY=4)) as sender,
    ):
        client_id = await sender.client("many")
        ids = await sender.due(client_id, 16)
        async with dispatching(sender.dispatcher()):
            await smtp.wait_for_mail(16, timeout=30)

            async def all_sent() -> list[dict[str, Any]] | None:
                records = [await sender.status(i) for i in ids]
                return records if all(r["status"] == "sent" for r in records) else None

            records = await until(all_sent)
    assert smtp.most_at_once == 4  # the channel's bound, and reached
    assert smtp.sessions <= 4  # one per sender at a time, each kept for the next message
    ids_sent = {m.message["Message-ID"] for m in smtp.received}
    assert len(ids_sent) == 16
    assert {r["provider_ref"] for r in records} == ids_sent  # each record names its e-mail


async def test_a_kept_session_the_server_dropped_is_replaced_without_a_failure(
    infra: Infra,
) -> None:
    async with SmtpFake() as smtp, sender_on(infra, **smtp_env(smtp)) as sender:
        client_id = await sender.client("dropped")
        async with dispatching(sender.dispatcher()):
            [first] = await sender.due(client_id, 1)
            await smtp.wait_for_mail(1)
            await smtp.restart()  # drops the session the pool keeps
            [second] = await sender.due(client_id, 1)
            await smtp.wait_for_mail(2)

            async def both_sent() -> list[dict[str, Any]] | None:
                records = [await sender.status(i) for i in (first, second)]
                return records if all(r["status"] == "sent" for r in records) else None

            records = await until(both_sent)
    assert all(r["attempts"] == 0 for r in records)  # no try failed
    assert smtp.sessions == 2


async def test_a_live_sender_keeps_its_claim_however_long_its_send_takes(
    infra: Infra,
) -> None:
    async with SmtpFake(answer_after_s=2.5) as smtp:
        env = smtp_env(smtp, NOTIFIER_CLAIM_LEASE_S=1)
        async with sender_on(infra, **env) as sender:
            client_id = await sender.client("slow")
            [notification_id] = await sender.due(client_id, 1)
            async with dispatching(sender.dispatcher()), dispatching(sender.dispatcher()):

                async def sent() -> dict[str, Any] | None:
                    record = await sender.status(notification_id)
                    return record if record["status"] == "sent" else None

                await until(sent)
    assert len(smtp.received) == 1


async def test_a_stopping_sender_hands_back_at_once_what_it_had_not_begun(
    infra: Infra,
) -> None:
    async with SmtpFake(answer_after_s=5) as smtp:
        env = smtp_env(smtp, NOTIFIER_SEND_CONCURRENCY=1, NOTIFIER_CLAIM_LEASE_S=60)
        async with sender_on(infra, **env) as sender:
            client_id = await sender.client("stopping")
            ids = await sender.due(client_id, 3)
            inflight = sender.runtime.keys("inflight")
            due = sender.runtime.keys("due")
            redis = sender.runtime.redis
            async with dispatching(sender.dispatcher()):
                await smtp.wait_for_mail(1)  # one is being sent, one waits for the channel
                claimed = await redis.zrange(inflight, 0, -1)
                assert len(claimed) == 2  # what it can start soon: twice its concurrency
            sending = [i for i in ids if (await sender.status(i))["status"] == "sending"]
            [waiting] = [i for i in claimed if i not in sending]
            assert len(sending) == 1
            # due again now, not when its lease of 60 s runs out
            assert await redis.zscore(due, waiting) is not None
            assert await redis.zscore(inflight, waiting) is None
            assert (await sender.status(waiting))["status"] == "scheduled"


async def test_a_reminder_its_sender_was_down_for_goes_late_or_is_too_late(
    infra: Infra, topics: TopicLog
) -> None:
    async with SmtpFake() as smtp, sender_on(infra, **smtp_env(smtp)) as sender:
        now = sender.clock.now()
        client_id = await sender.client("was-down")
        # both fell due hours ago, while no sender ran
        near = await sender.reminder(
            client_id,
            due_at=now - timedelta(hours=1, minutes=30),
            visit_start=now + timedelta(minutes=30),
        )
        far = await sender.reminder(
            client_id, due_at=now - timedelta(hours=8), visit_start=now + timedelta(hours=40)
        )
        async with dispatching(sender.dispatcher()):

            async def closed() -> list[dict[str, Any]] | None:
                records = [await sender.status(i) for i in (near, far)]
                return records if all(r["status"] != "scheduled" for r in records) else None

            too_late, late = await until(closed)
            suppressed = await topics.wait_for(
                lambda: topics.for_client("notification.suppressed", client_id)
            )
        assert (too_late["status"], too_late["reason"]) == ("suppressed", "too_late")
        assert suppressed[0]["data"]["reason"] == "too_late"
        assert late["status"] == "sent"  # a day and more ahead: still of use
        assert [m.message["Message-ID"] for m in smtp.received] == [late["provider_ref"]]


async def test_a_record_no_message_can_be_made_of_fails_for_good_with_the_reason(
    infra: Infra, topics: TopicLog
) -> None:
    async with SmtpFake() as smtp, sender_on(infra, **smtp_env(smtp)) as sender:
        client_id = await sender.client("unmakeable")
        # an aftercare record without the visit's completion time it is written from
        broken = await sender._armed(client_id, "aftercare", sender.clock.now(), {})
        async with dispatching(sender.dispatcher()):

            async def closed() -> dict[str, Any] | None:
                record = await sender.status(broken)
                return record if record["status"] != "scheduled" else None

            record = await until(closed)
            dead = await topics.wait_for(
                lambda: [
                    e for e in topics.events(type="record.deadlettered") if e["subject"] == broken
                ]
            )
        assert (record["status"], record["reason"]) == ("failed", "compose: KeyError")
        assert record["attempts"] == 1  # not retried: no later try would do better
        assert not await armed(sender, broken)
        assert "compose: KeyError" in dead[0]["data"]["error"]
        assert smtp.received == []
