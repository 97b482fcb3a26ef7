"""The notifier against real Redis, the real broker, a real SMTP server and a
real HTTP server speaking Twilio's API: reminders that survive a restart and
arrive once, re-timing on reschedule and cancel, quiet hours across the spring
change, STOP and START, retries then failure, the per-client rate limit,
aftercare from the plan and the check-in reply flowing back.

Events are handed to the notifier's handlers as its consumer would (the
consumer path has its end-to-end test) and their output is published; the
dispatcher runs for real on a settable clock, so "the reminder is due" is a
fact of the test."""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from services.notifier.api import router
from services.notifier.channels import channels_from
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import handlers
from services.notifier.sms_inbound import twilio_signature
from services.notifier.store import NotificationStore
from services.planner.domain import build_plan
from shared.chain import Policy
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import ClientUpdated, EventData, IntakeSubmitted, PlanCreated, VisitBooked
from shared.events.intake import (
    ClientRecord,
    Complaint,
    ContactConsent,
    Health,
    Preferences,
    Screening,
)
from shared.events.visits import VisitCancelled, VisitCompleted, VisitRescheduled
from shared.infra import Infra
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import NotifierSettings
from tests.conftest import DEMO_CHAIN, reminders_only_chain
from tests.notifier_fakes import SmsApiFake, SmtpFake
from tests.support import SettableClock, TopicLog, until

pytestmark = pytest.mark.integration

# for the tests of the reminders alone: the plan-change notices switched off by policy
REMINDERS = {
    "CLINICFLOW_CHAIN_CONFIG": str(
        reminders_only_chain(Path(tempfile.mkdtemp(prefix="clinicflow-reminders-")))
    )
}

T = TypeVar("T")

START = datetime(2027, 3, 10, 17, tzinfo=UTC)  # Wednesday 09:00 in Beaverton (PST)
VISIT = datetime(2027, 3, 15, 16, tzinfo=UTC)  # Monday 09:00 (PDT: after the spring change)
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
INBOUND_URL = "http://notifier/v1/sms/inbound"
SMS_TOKEN = "sms-auth-token-for-tests"
SECRET_COMPLAINT = "zxworse after long drives"


@dataclass
class Notifier:
    http: httpx.AsyncClient
    runtime: Runtime
    clock: SettableClock
    configured: frozenset[str]
    store: NotificationStore = field(init=False)

    def __post_init__(self) -> None:
        self.store = NotificationStore(self.runtime.redis, self.runtime.keys)

    async def receive(self, data: EventData, *, subject: str = "s") -> None:
        """Hand an event to the notifier as its consumer would, and publish the result."""
        cause = wrap(
            data,
            event_id=str(uuid.uuid4()),
            service="test",
            subject=subject,
            trace=Trace(chainid="northwest-nmt", correlationid=subject),
            time=self.clock.now(),
        )
        handle = handlers(self.runtime, self.configured)[data.event_type]  # type: ignore[arg-type]
        await self.runtime.publisher.publish(await handle(cause, data))

    async def statuses(self, client_id: str) -> dict[str, str]:
        return {r["notification_id"]: r["status"] for r in await self.store.for_client(client_id)}


@asynccontextmanager
async def notifier_on(infra: Infra, namespace: str, **env: Any) -> AsyncIterator[Notifier]:
    settings = NotifierSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=namespace,
        CLINICFLOW_ENV="test",
        API_RATE_LIMIT_PER_MINUTE=60_000,
        API_RATE_LIMIT_BURST=10_000,
        NOTIFIER_POLL_INTERVAL_S=0.05,
        NOTIFIER_SMS_INBOUND_URL=INBOUND_URL,
        **{"CLINICFLOW_CHAIN_CONFIG": str(DEMO_CHAIN), **env},
    )
    channels = channels_from(settings)

    async def dispatch(runtime: Runtime) -> None:
        await Dispatcher(runtime, settings, channels).run()

    app: FastAPI = build_service(
        service="notifier",
        settings=settings,
        description="notifier under test",
        routers=[router],
        background=[dispatch],
    )
    clock = SettableClock(START)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        runtime.base.clock = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as http:
            yield Notifier(http=http, runtime=runtime, clock=clock, configured=frozenset(channels))


def smtp_env(smtp: SmtpFake) -> dict[str, Any]:
    return {
        "NOTIFIER_SMTP_HOST": smtp.host,
        "NOTIFIER_SMTP_PORT": smtp.port,
        "NOTIFIER_SMTP_SECURITY": "none",
        "NOTIFIER_EMAIL_FROM": "care@northwest-nmt.example",
    }


def sms_env(sms: SmsApiFake) -> dict[str, Any]:
    return {
        "NOTIFIER_SMS_BASE_URL": sms.base_url,
        "NOTIFIER_SMS_ACCOUNT_SID": sms.account_sid,
        "NOTIFIER_SMS_AUTH_TOKEN": sms.auth_token,
        "NOTIFIER_SMS_FROM": "+15035550100",
    }


def intake(
    n: str, *, email: bool = True, sms: bool = False, language: str = "en"
) -> IntakeSubmitted:
    return IntakeSubmitted(
        intake_id=f"notify-{n}-{uuid.uuid4().hex[:6]}",
        client=ClientRecord(
            client_id=f"client-{n}-{uuid.uuid4().hex[:6]}",
            name="Jordan Notify",
            email=f"jordan-{n}@example.com",
            phone="+15035550123" if sms else None,
            language=language,
            contact_consent=ContactConsent(email=email, sms=sms),
        ),
        location_id="beaverton",
        complaints=[
            Complaint(
                region="neck",
                intensity=7,
                qualities=["ache"],
                onset=date(2026, 6, 1),
                frequency=SECRET_COMPLAINT,
            )
        ],
        health=Health(),
        screening=Screening(outcome="clear"),
        preferences=Preferences(),
        submitted_at=START,
    )


def visit_for(client: IntakeSubmitted, *, start: datetime = VISIT, n: int = 1) -> VisitBooked:
    return VisitBooked(
        visit_id=f"visit-{client.client.client_id}-{n}",
        plan_id=f"plan-{client.client.client_id}",
        client_id=client.client.client_id,
        location_id="beaverton",
        therapist_id="t-ana",
        room=1,
        start=start,
        end=start + timedelta(hours=1),
        timezone="America/Los_Angeles",
        sequence=n,
        sessions_total=6,
    )


def completed(visit: VisitBooked, *, plan_id: str | None = None) -> VisitCompleted:
    return VisitCompleted(
        visit_id=visit.visit_id,
        plan_id=plan_id or visit.plan_id,
        client_id=visit.client_id,
        location_id=visit.location_id,
        therapist_id=visit.therapist_id,
        pain_before=6,
        pain_after=3,
        completed_at=visit.end,
    )


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_reminders_survive_a_restart_and_arrive_once_at_the_right_local_time(
    infra: Infra, topics: TopicLog
) -> None:
    namespace = f"test-notify-{uuid.uuid4().hex[:8]}"
    client = intake("restart")
    visit = visit_for(client)
    async with SmtpFake() as smtp:
        async with notifier_on(infra, namespace, **smtp_env(smtp), **REMINDERS) as first:
            await first.receive(client)
            await first.receive(visit)
            records = await first.store.for_client(client.client.client_id)
        # two days before on the wall clock (Saturday 09:00 PST); the two-hour one
        # falls in quiet hours (21:00-08:00) and moves to 08:00 PDT
        due = {r["offset"]: datetime.fromisoformat(r["due_at"]) for r in records}
        assert due == {
            "P2D": datetime(2027, 3, 13, 17, tzinfo=UTC),
            "PT2H": datetime(2027, 3, 15, 15, tzinfo=UTC),
        }
        assert {r["offset"]: r["moved_for_quiet_hours"] for r in records} == {
            "P2D": False,
            "PT2H": True,
        }
        assert smtp.received == []  # the first process stopped before anything was due

        async with notifier_on(infra, namespace, **smtp_env(smtp), **REMINDERS) as second:
            await second.receive(visit)  # redelivered after the restart: nothing new
            second.clock.at = due["PT2H"]  # both due, an hour ahead (the PT2H one moved)
            mails = await smtp.wait_for_mail(2)

            async def all_sent() -> bool:
                statuses = await second.statuses(client.client.client_id)
                return set(statuses.values()) == {"sent"}

            await until(all_sent)
            second.clock.at = VISIT + timedelta(days=1)
            await second.receive(visit)  # and again, after both were sent
            await topics.wait_for(
                lambda: len(topics.for_client("notification.sent", client.client.client_id)) == 2
            )
            await topics.caught_up()
        assert len(smtp.received) == 2  # nothing lost, nothing twice
        assert len(topics.for_client("notification.sent", client.client.client_id)) == 2

    for mail in mails:
        message = mail.message
        assert message["To"] == client.client.email
        text = body_of(message)
        assert "Monday, March 15 at 9:00 AM PDT" in text
        assert "12500 SW Broadway St" in text
        assert SECRET_COMPLAINT not in text and "neck" not in text.lower()
        assert re.search(r"/v1/visits/[^/]+/manage\?sig=[^&\s]+&lang=en", text)  # the page


async def test_a_reschedule_retimes_the_reminders_and_a_cancel_cancels_them(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("retime")
    visit = visit_for(client)
    async with SmtpFake() as smtp:
        namespace = f"test-notify-{uuid.uuid4().hex[:8]}"
        async with notifier_on(infra, namespace, **smtp_env(smtp), **REMINDERS) as n:
            await n.receive(client)
            await n.receive(visit)
            first = set(await n.statuses(client.client.client_id))
            later = VISIT + timedelta(days=7)
            await n.receive(
                VisitRescheduled(
                    visit_id=visit.visit_id,
                    plan_id=visit.plan_id,
                    client_id=visit.client_id,
                    location_id="beaverton",
                    therapist_id="t-ana",
                    room=1,
                    previous_start=VISIT,
                    start=later,
                    end=later + timedelta(hours=1),
                    timezone="America/Los_Angeles",
                )
            )
            records = {r["notification_id"]: r for r in await n.store.for_client(visit.client_id)}
            assert {records[i]["status"] for i in first} == {"cancelled"}
            moved = {i: r for i, r in records.items() if i not in first}
            assert {r["status"] for r in moved.values()} == {"scheduled"}
            assert sorted(datetime.fromisoformat(r["due_at"]) for r in moved.values()) == [
                datetime(2027, 3, 20, 16, tzinfo=UTC),  # two days before, on the wall clock
                datetime(2027, 3, 22, 15, tzinfo=UTC),  # 08:00, out of quiet hours
            ]

            await n.receive(
                VisitCancelled(
                    visit_id=visit.visit_id,
                    plan_id=visit.plan_id,
                    client_id=visit.client_id,
                    location_id="beaverton",
                    by="client",
                    cancelled_at=START,
                )
            )
            assert set((await n.statuses(visit.client_id)).values()) == {"cancelled"}
            n.clock.at = later + timedelta(days=1)  # every original due time has passed
            cancelled = await topics.wait_for(
                lambda: (
                    len(topics.for_client("notification.cancelled", visit.client_id)) == 4
                    and topics.for_client("notification.cancelled", visit.client_id)
                )
            )
            assert {e["data"]["reason"] for e in cancelled} == {"rescheduled", "visit cancelled"}
            await topics.caught_up()
        assert smtp.received == []
        assert topics.for_client("notification.sent", visit.client_id) == []


def signed(params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": twilio_signature(SMS_TOKEN, INBOUND_URL, params)}


async def text_in(n: Notifier, body: str, *, phone: str = "+15035550123") -> httpx.Response:
    params = {"From": phone, "To": "+15035550100", "Body": body, "MessageSid": uuid.uuid4().hex}
    return await n.http.post(
        "/v1/sms/inbound",
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", **signed(params)},
    )


async def test_stop_is_honoured_at_once_start_undoes_it_and_a_texted_score_flows_back(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("stop", email=False, sms=True)
    client_id = client.client.client_id
    async with SmsApiFake(auth_token=SMS_TOKEN) as sms:
        env = {**sms_env(sms)}
        async with notifier_on(infra, f"test-notify-{uuid.uuid4().hex[:8]}", **env) as n:
            await n.receive(client)
            await n.receive(visit_for(client))
            assert {r["channel"] for r in await n.store.for_client(client_id)} == {"sms"}

            forged = await n.http.post(
                "/v1/sms/inbound",
                content="From=%2B15035550123&Body=STOP",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert forged.status_code == 403
            stopped = await text_in(n, "Stop")
            assert stopped.status_code == 200
            n.clock.at = VISIT  # both reminders are due: STOP already holds them back

            async def settled() -> dict[str, str] | None:
                statuses = await n.statuses(client_id)
                return statuses if "scheduled" not in statuses.values() else None

            assert set((await until(settled)).values()) == {"suppressed"}
            records = await n.store.for_client(client_id)
            assert {r["reason"] for r in records} == {"sms_stopped"}
            assert sms.messages == []

            helped = await text_in(n, "help")
            assert "+15035550100" in helped.text and "STOP" in helped.text
            started = await text_in(n, "START")
            assert started.status_code == 200 and "on again" in started.text
            later = visit_for(client, start=VISIT + timedelta(days=7), n=2)
            await n.receive(later)
            await n.receive(completed(later))
            # both reminders due (the two-hour one moved to 08:00 by quiet hours)
            n.clock.at = later.start - timedelta(hours=1)
            await sms.wait_for_requests(2)
            n.clock.at = later.end + timedelta(days=1, minutes=1)  # aftercare, then check-in
            await sms.wait_for_requests(4)  # two reminders, aftercare, check-in
            bodies = [m["Body"] for m in sms.messages]
            assert all(b.startswith("Northwest Neuromuscular Therapy") for b in bodies)
            assert sum("Beaverton" in b for b in bodies) == 2  # the reminders say where
            assert not any(SECRET_COMPLAINT in b or "neck" in b.lower() for b in bodies)

            async def checkin_sent() -> bool:
                records = await n.store.for_client(client_id)
                return any(r["kind"] == "checkin" and r["status"] == "sent" for r in records)

            await until(checkin_sent)
            thanked = await text_in(n, " 4 ")
            assert "4/10" in thanked.text
            replied = await topics.wait_for(lambda: topics.for_client("checkin.replied", client_id))
            assert replied[0]["data"]["pain"] == 4 and replied[0]["data"]["channel"] == "sms"
            assert replied[0]["data"]["visit_id"] == later.visit_id


async def test_transient_failures_are_retried_then_the_message_fails_to_the_dead_letters(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("retry")
    client_id = client.client.client_id
    visit = visit_for(client)
    env = {"NOTIFIER_MAX_ATTEMPTS": 3, "NOTIFIER_RETRY_BASE_S": 1, "NOTIFIER_RETRY_CAP_S": 2}
    async with (
        SmtpFake() as smtp,
        notifier_on(infra, f"test-notify-{uuid.uuid4().hex[:8]}", **smtp_env(smtp), **env) as n,
    ):
        await n.receive(client)
        smtp.fail_next(451, times=3)  # every attempt the notifier makes
        n.clock.at = visit.end
        await n.receive(completed(visit))  # aftercare due now

        async def failed() -> dict[str, Any] | None:
            n.clock.at += timedelta(seconds=5)  # past any backoff
            records = [r for r in await n.store.for_client(client_id) if r["kind"] == "aftercare"]
            return records[0] if records and records[0]["status"] == "failed" else None

        record = await until(failed)
        assert record["attempts"] == 3 and "451" in record["reason"]
        assert smtp.refused.count(451) == 3 and smtp.received == []
        event = (
            await topics.wait_for(lambda: topics.for_client("notification.failed", client_id))
        )[0]
        assert event["data"]["attempts"] == 3
        dead = await topics.wait_for(
            lambda: [
                e
                for e in topics.events(type="record.deadlettered")
                if e["subject"] == record["notification_id"]
            ]
        )
        assert dead[0]["data"]["source_topic"] == "clinic.notifications"
        assert client.client.email not in dead[0]["data"]["payload"]

        # one transient failure, then it goes through
        smtp.fail_next(451, times=1)
        second = visit_for(client, n=2)
        await n.receive(completed(second))

        async def sent() -> list[Any] | None:
            n.clock.at += timedelta(seconds=5)
            return smtp.received or None

        await until(sent)
        records = {r["visit_id"]: r for r in await n.store.for_client(client_id)}
        assert records[second.visit_id]["status"] in ("scheduled", "sent")


async def test_the_per_client_rate_limit_suppresses_a_flood(infra: Infra) -> None:
    client = intake("flood")
    client_id = client.client.client_id
    env = {"NOTIFIER_CLIENT_MAX_PER_HOUR": 2}
    async with (
        SmtpFake() as smtp,
        notifier_on(infra, f"test-notify-{uuid.uuid4().hex[:8]}", **smtp_env(smtp), **env) as n,
    ):
        await n.receive(client)
        n.clock.at = VISIT + timedelta(hours=2)
        for k in range(1, 5):
            await n.receive(completed(visit_for(client, n=k)))

        async def aftercare_done() -> list[dict[str, Any]] | None:
            found = [r for r in await n.store.for_client(client_id) if r["kind"] == "aftercare"]
            return found if all(r["status"] != "scheduled" for r in found) else None

        done = await until(aftercare_done)
    assert sorted(r["status"] for r in done) == ["sent", "sent", "suppressed", "suppressed"]
    assert {r.get("reason") for r in done if r["status"] == "suppressed"} == {"rate_limited"}
    assert len(smtp.received) == 2


async def test_aftercare_carries_the_plans_home_program_and_the_check_in_reply_flows_back(
    infra: Infra, topics: TopicLog
) -> None:
    client = intake("aftercare")
    client_id = client.client.client_id
    plan = build_plan(client, policy=Policy())
    assert isinstance(plan, PlanCreated)
    visit = visit_for(client).model_copy(update={"plan_id": plan.plan_id})
    namespace = f"test-notify-{uuid.uuid4().hex[:8]}"
    async with SmtpFake() as smtp, notifier_on(infra, namespace, **smtp_env(smtp)) as n:
        await n.receive(client)
        await n.receive(plan)
        summary = (await smtp.wait_for_mail(1))[0]
        assert f"Sessions: {plan.sessions_total}" in body_of(summary.message)

        n.clock.at = visit.end
        await n.receive(completed(visit))
        aftercare = (await smtp.wait_for_mail(2))[1]
        text = body_of(aftercare.message)
        for stretch in plan.home_program.stretches:
            assert stretch.name in text
        assert "48" in text  # soreness for 24-48 hours is normal
        assert SECRET_COMPLAINT not in text

        n.clock.at = visit.end + timedelta(hours=24, minutes=1)
        checkin = (await smtp.wait_for_mail(3))[2]
        link = re.search(r"https?://\S+/v1/checkins/\S+", body_of(checkin.message))
        assert link is not None
        path = httpx.URL(link.group(0))
        page = await n.http.get(path.path, params=dict(path.params))
        assert page.status_code == 200 and 'value="10"' in page.text
        reply_path = f"{path.path}/reply"
        params = dict(path.params)
        answered = await n.http.post(reply_path, params=params, data={"pain": "3"})
        assert answered.status_code == 200, answered.text
        again = await n.http.post(reply_path, params=params, json={"pain": 3})
        assert again.status_code == 200
        other = await n.http.post(reply_path, params=params, json={"pain": 5})
        assert other.status_code == 409
        invalid = await n.http.post(reply_path, params=params, json={"pain": 11})
        assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"] == [
            "body",
            "pain",
        ]
        garbled = await n.http.post(
            reply_path,
            params=params,
            content=b"pain=\xff",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert garbled.status_code == 422 and garbled.json()["detail"][0]["loc"] == ["body"]
        forged = await n.http.post(reply_path, params={"sig": "x"}, json={"pain": 3})
        assert forged.status_code == 401

        replied = await topics.wait_for(lambda: topics.for_client("checkin.replied", client_id))
        await topics.caught_up()
        # the same answer again republishes the same event: one id, counted once
        assert len({e["id"] for e in topics.for_client("checkin.replied", client_id)}) == 1
        assert replied[0]["data"]["pain"] == 3
        assert replied[0]["data"]["plan_id"] == plan.plan_id

        log = await n.http.get(f"/v1/clients/{client_id}/notifications", headers=FRONT_DESK)
        kinds = {(x["kind"], x["status"]) for x in log.json()["notifications"]}
        assert kinds == {("plan_summary", "sent"), ("aftercare", "sent"), ("checkin", "sent")}


async def test_contact_preferences_change_what_is_sent_from_the_next_message_on(
    infra: Infra,
) -> None:
    client = intake("prefs", sms=True)
    client_id = client.client.client_id
    path = f"/v1/clients/{client_id}/contact-preferences"
    async with (
        SmtpFake() as smtp,
        notifier_on(infra, f"test-notify-{uuid.uuid4().hex[:8]}", **smtp_env(smtp)) as n,
    ):
        await n.receive(client)
        shown = await n.http.get(path, headers=FRONT_DESK)
        assert shown.json() == {
            "client_id": client_id,
            "email": True,
            "sms": True,
            "quiet_hours": None,
            "sms_stopped": False,
        }
        await n.receive(visit_for(client))  # reminders armed while e-mail is allowed

        bad = await n.http.put(
            path, json={"email": True, "sms": True, "quiet_hours": "late"}, headers=FRONT_DESK
        )
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "quiet_hours"]
        therapist = {"Authorization": "Bearer demo-therapist-ana"}
        refused = await n.http.put(path, json={"email": False, "sms": False}, headers=therapist)
        assert refused.status_code == 403
        elsewhere = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
        hidden = await n.http.put(path, json={"email": False, "sms": False}, headers=elsewhere)
        assert hidden.status_code == 404

        changed = await n.http.put(path, json={"email": False, "sms": False}, headers=FRONT_DESK)
        assert changed.status_code == 200 and changed.json()["email"] is False
        n.clock.at = VISIT

        async def settled() -> list[dict[str, Any]] | None:
            records = await n.store.for_client(client_id)
            return records if all(r["status"] != "scheduled" for r in records) else None

        records = await until(settled)
        assert {(r["status"], r["reason"]) for r in records} == {("suppressed", "no_consent")}
        assert smtp.received == []


async def test_a_later_intake_never_turns_a_clients_own_opt_out_back_on_a_confirmed_change_does(
    infra: Infra,
) -> None:
    client = intake("consent", sms=True)
    client_id = client.client.client_id
    path = f"/v1/clients/{client_id}/contact-preferences"
    async with notifier_on(infra, f"test-notify-{uuid.uuid4().hex[:8]}") as n:
        await n.receive(client)
        opted_out = await n.http.put(path, json={"email": False, "sms": True}, headers=FRONT_DESK)
        assert opted_out.status_code == 200
        await n.receive(client.model_copy(update={"intake_id": f"{client.intake_id}-again"}))
        shown = (await n.http.get(path, headers=FRONT_DESK)).json()
        assert (shown["email"], shown["sms"]) == (False, True)  # the intake granted nothing

        record = client.client.model_copy(
            update={
                "phone": "+15035550199",
                "contact_consent": ContactConsent(email=True, sms=False),
            }
        )
        await n.receive(
            ClientUpdated(
                change_id="change-1",
                client=record,
                location_id="beaverton",
                changed_by="desk-key-digest",
                changed_at=START,
            )
        )
        shown = (await n.http.get(path, headers=FRONT_DESK)).json()
        assert (shown["email"], shown["sms"]) == (True, False)
        contact = await n.store.contact(client_id)
        assert contact is not None and contact.phone == "+15035550199"


async def test_over_the_global_rate_messages_wait_for_the_next_minute(infra: Infra) -> None:
    client = intake("global")
    client_id = client.client.client_id
    env = {"NOTIFIER_GLOBAL_MAX_PER_MINUTE": 1}
    async with (
        SmtpFake() as smtp,
        notifier_on(infra, f"test-notify-{uuid.uuid4().hex[:8]}", **smtp_env(smtp), **env) as n,
    ):
        await n.receive(client)
        n.clock.at = datetime(2027, 3, 15, 18, 0, 10, tzinfo=UTC)
        for k in (1, 2):
            await n.receive(completed(visit_for(client, n=k)))
        await smtp.wait_for_mail(1)

        async def one_waiting() -> list[dict[str, Any]] | None:
            found = [r for r in await n.store.for_client(client_id) if r["kind"] == "aftercare"]
            statuses = sorted(r["status"] for r in found)
            return found if statuses == ["scheduled", "sent"] else None

        waiting = next(r for r in await until(one_waiting) if r["status"] == "scheduled")
        assert waiting["attempts"] == 0  # held back, not failed
        n.clock.at = datetime(2027, 3, 15, 18, 1, 0, tzinfo=UTC)  # the next minute
        await smtp.wait_for_mail(2)
