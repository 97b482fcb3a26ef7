"""Two-way SMS through the real webhook (a form signed with X-Twilio-Signature), on
real Redis and the real broker: Y confirms the next visit, HELP and START answer
in the client's language, STOP and CANCEL stop the next SMS, and any other text
is answered with the clinic's number and the visit's link, then listed for the
front desk until someone marks it answered. Every text publishes
``reply.received`` once: a redelivered webhook publishes the same event again and
records nothing twice."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from services.notifier.api import router
from services.notifier.app import build_app
from services.notifier.channels import channels_from
from services.notifier.dispatcher import Dispatcher
from services.notifier.sms_inbound import twilio_signature
from services.notifier.sms_replies_api import router as sms_replies_router
from shared import links
from shared.events import IntakeSubmitted
from shared.infra import Infra
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import NotifierSettings
from tests.conftest import DEMO_CHAIN
from tests.integration.test_notifier_flow import (
    FRONT_DESK,
    START,
    VISIT,
    Notifier,
    intake,
    sms_env,
    visit_for,
)
from tests.notifier_fakes import SmsApiFake
from tests.support import SettableClock, TopicLog, until

pytestmark = pytest.mark.integration

INBOUND_URL = "http://notifier/v1/sms/inbound"
SMS_TOKEN = "sms-auth-token-for-reply-tests"
LINK_SECRET = "link-secret-for-sms-reply-tests-0123456789"
PHONE = "+15035550123"  # the client's, as tests.integration.test_notifier_flow.intake gives
THERAPIST = {"Authorization": "Bearer demo-therapist-ana"}
BROOKLYN_DESK = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
ADMIN = {"Authorization": "Bearer demo-admin"}
OPS = {"Authorization": "Bearer demo-ops"}


def settings_for(infra: Infra, namespace: str, **env: Any) -> NotifierSettings:
    return NotifierSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=namespace,
        CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
        CLINICFLOW_ENV="test",
        CLINICFLOW_LINK_SECRET=LINK_SECRET,
        API_RATE_LIMIT_PER_MINUTE=60_000,
        API_RATE_LIMIT_BURST=10_000,
        NOTIFIER_POLL_INTERVAL_S=0.05,
        NOTIFIER_SMS_INBOUND_URL=INBOUND_URL,
        **env,
    )


@asynccontextmanager
async def notifier(infra: Infra, sms: SmsApiFake) -> AsyncIterator[Notifier]:
    """The notifier's routes (the webhook and the front desk's replies) and its
    dispatcher on a settable clock; events are handed to its handlers by the test."""
    settings = settings_for(infra, f"test-sms-replies-{uuid.uuid4().hex[:8]}", **sms_env(sms))
    channels = channels_from(settings)

    async def dispatch(runtime: Runtime) -> None:
        await Dispatcher(runtime, settings, channels).run()

    app: FastAPI = build_service(
        service="notifier",
        settings=settings,
        description="notifier under test",
        routers=[router, sms_replies_router],
        background=[dispatch],
    )
    clock = SettableClock(START)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        runtime.base.clock = clock
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as http:
            yield Notifier(http=http, runtime=runtime, clock=clock, configured=frozenset(channels))


async def text_in(
    n: Notifier, body: str, *, sid: str | None = None, phone: str = PHONE
) -> httpx.Response:
    params = {
        "From": phone,
        "To": "+15035550100",
        "Body": body,
        "MessageSid": sid or "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "f" * 32,
    }
    return await n.http.post(
        "/v1/sms/inbound",
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(SMS_TOKEN, INBOUND_URL, params),
        },
    )


def answer_of(response: httpx.Response) -> str | None:
    """The text of the TwiML answer, or None when it answers nothing."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    found = re.search(r"<Message>(.*)</Message>", response.text, re.S)
    return None if found is None else found.group(1).replace("&amp;", "&")


def sms_client(n: str, *, language: str = "en") -> IntakeSubmitted:
    return intake(n, email=False, sms=True, language=language)


async def replies_of(topics: TopicLog, reply_id: str, *, count: int = 1) -> list[dict[str, Any]]:
    """The ``reply.received`` records of one text, once ``count`` have arrived."""
    return await topics.wait_for(
        lambda: (
            found
            if len(found := topics.events(type="reply.received", subject=reply_id)) >= count
            else None
        )
    )


async def test_y_confirms_the_next_visit_in_the_clients_language_and_once(
    infra: Infra, topics: TopicLog
) -> None:
    client = sms_client("confirm", language="es")
    first = visit_for(client, n=1)
    later = visit_for(client, start=VISIT + timedelta(days=7), n=2)
    async with SmsApiFake(auth_token=SMS_TOKEN) as sms, notifier(infra, sms) as n:
        await n.receive(client)
        await n.receive(later)  # booked in any order: the next one is the earliest ahead
        await n.receive(first)

        sid = "SM" + uuid.uuid4().hex
        answered = answer_of(await text_in(n, " Y. ", sid=sid))
        assert answered is not None
        assert "lunes 15 de marzo a las 9:00 PDT" in answered  # the visit's local time
        assert "Beaverton" in answered and "confirmada" in answered
        [event] = await replies_of(topics, sid)
        assert event["data"]["intent"] == "confirm"
        assert event["data"]["visit_id"] == first.visit_id
        assert event["data"]["client_id"] == client.client.client_id
        assert event["data"]["location_id"] == "beaverton"
        assert event["data"]["channel"] == "sms"
        first_record = topics.record_of(event["id"])
        assert first_record is not None and first_record.key == client.client.client_id

        # the provider redelivers the same text a minute later: the same answer and
        # the same event, byte for byte, though the clock moved on
        n.clock.at += timedelta(minutes=1)
        again = answer_of(await text_in(n, " Y. ", sid=sid))
        assert again == answered
        twice = await replies_of(topics, sid, count=2)
        assert {e["id"] for e in twice} == {event["id"]}
        values = {
            r.value
            for r in topics.records
            if r.topic == "clinic.notifications" and r.value and sid.encode() in r.value
        }
        assert len(values) == 1

        # the first visit is over: "C" confirms the next one
        n.clock.at = first.end + timedelta(hours=1)
        second_sid = "SM" + uuid.uuid4().hex
        assert "lunes 22 de marzo" in (answer_of(await text_in(n, "c", sid=second_sid)) or "")
        [confirmed_later] = await replies_of(topics, second_sid)
        assert confirmed_later["data"]["visit_id"] == later.visit_id


async def test_confirming_with_no_visit_ahead_says_so_and_tells_the_front_desk(
    infra: Infra, topics: TopicLog
) -> None:
    client = sms_client("noconfirm")
    async with SmsApiFake(auth_token=SMS_TOKEN) as sms, notifier(infra, sms) as n:
        await n.receive(client)
        sid = "SM" + uuid.uuid4().hex
        answered = answer_of(await text_in(n, "CONFIRM", sid=sid))
        assert answered is not None
        assert "no upcoming visit" in answered and "+15035550100" in answered
        # no visit for the scheduler to confirm: the client expects one we do not know
        # of, so the text is the front desk's to read
        [event] = await replies_of(topics, sid)
        assert event["data"]["intent"] == "other" and event["data"].get("visit_id") is None
        listed = await n.http.get("/v1/locations/beaverton/sms-replies", headers=FRONT_DESK)
        assert [(r["reply_id"], r["text"]) for r in listed.json()["replies"]] == [(sid, "CONFIRM")]


async def test_any_other_text_is_answered_listed_for_the_front_desk_and_answered_once(
    infra: Infra, topics: TopicLog
) -> None:
    client = sms_client("other")
    client_id = client.client.client_id
    visit = visit_for(client)
    words = "Can I bring my daughter? zqvexing shoulder"
    async with SmsApiFake(auth_token=SMS_TOKEN) as sms, notifier(infra, sms) as n:
        await n.receive(client)
        await n.receive(visit)
        listing = "/v1/locations/beaverton/sms-replies"
        empty = await n.http.get(listing, headers=FRONT_DESK)
        assert empty.status_code == 200, empty.text
        assert (empty.json()["count"], empty.json()["replies"]) == (0, [])

        sid = "SM" + uuid.uuid4().hex
        answered = answer_of(await text_in(n, words, sid=sid))
        assert answered is not None
        assert "front desk" in answered and "+15035550100" in answered
        assert "zqvexing" not in answered  # never repeated back
        url = answered.rsplit(" ", 1)[-1]
        assert visit.visit_id in urlsplit(url).path
        [sig] = parse_qs(urlsplit(url).query)["sig"]
        assert links.verify(LINK_SECRET, sig, "visit", visit.visit_id, now=START)

        [event] = await replies_of(topics, sid)
        assert event["data"]["intent"] == "other" and event["data"].get("visit_id") is None
        record = topics.record_of(event["id"])
        assert record is not None and record.value is not None
        assert b"zqvexing" not in record.value  # the words are not in the event

        listed = (await n.http.get(listing, headers=FRONT_DESK)).json()
        assert listed["status"] == "unanswered" and listed["count"] == 1
        [shown] = listed["replies"]
        assert shown["reply_id"] == sid and shown["text"] == words
        assert shown["client_id"] == client_id and shown["status"] == "unanswered"
        assert shown["received_at"] == START.isoformat().replace("+00:00", "Z")

        # redelivered: listed once, the same event
        assert answer_of(await text_in(n, words, sid=sid)) == answered
        assert (await n.http.get(listing, headers=FRONT_DESK)).json()["count"] == 1
        assert {e["id"] for e in await replies_of(topics, sid, count=2)} == {event["id"]}

        # who may see it: Beaverton's front desk and an admin; not another location's
        # desk (not found), nor a therapist or operations (forbidden)
        assert (await n.http.get(listing, headers=ADMIN)).json()["count"] == 1
        assert (await n.http.get(listing, headers=BROOKLYN_DESK)).status_code == 404
        assert (await n.http.get(listing, headers=THERAPIST)).status_code == 403
        assert (await n.http.get(listing, headers=OPS)).status_code == 403
        assert (await n.http.get(listing)).status_code == 401
        assert (
            await n.http.get("/v1/locations/nowhere/sms-replies", headers=ADMIN)
        ).status_code == 404
        bad = await n.http.get(listing, params={"status": "read"}, headers=FRONT_DESK)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]

        mark = f"/v1/sms-replies/{sid}/answered"
        assert (await n.http.post(mark, json={}, headers=BROOKLYN_DESK)).status_code == 404
        assert (await n.http.post(mark, json={}, headers=THERAPIST)).status_code == 403
        wrong = await n.http.post(mark, json={"note": "x", "by": "me"}, headers=FRONT_DESK)
        assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "by"]
        too_long = await n.http.post(mark, json={"note": "x" * 1001}, headers=FRONT_DESK)
        assert too_long.status_code == 422
        assert too_long.json()["detail"][0]["loc"] == ["body", "note"]
        missing = "/v1/sms-replies/SMnothing/answered"
        assert (await n.http.post(missing, json={}, headers=FRONT_DESK)).status_code == 404

        n.clock.at = START + timedelta(minutes=20)
        done = await n.http.post(mark, json={"note": "called her back"}, headers=FRONT_DESK)
        assert done.status_code == 200, done.text
        view = done.json()
        assert view["status"] == "answered" and view["note"] == "called her back"
        assert view["answered_by"] == "Beaverton front desk" and view["answered_by_key"]
        assert view["answered_at"] == (START + timedelta(minutes=20)).isoformat().replace(
            "+00:00", "Z"
        )
        # answered again (a double click, another desk): the first answer stands
        n.clock.at += timedelta(minutes=5)
        again = await n.http.post(mark, json={"note": "second"}, headers=ADMIN)
        assert again.status_code == 200 and again.json() == view

        assert (await n.http.get(listing, headers=FRONT_DESK)).json()["count"] == 0
        answered_list = await n.http.get(listing, params={"status": "answered"}, headers=ADMIN)
        assert [r["reply_id"] for r in answered_list.json()["replies"]] == [sid]
        # a redelivery after it was answered does not bring it back
        await text_in(n, words, sid=sid)
        assert (await n.http.get(listing, headers=FRONT_DESK)).json()["count"] == 0

        # a keyword is no text for the desk: never listed, and not found to answer
        help_sid = "SM" + uuid.uuid4().hex
        await text_in(n, "HELP", sid=help_sid)
        helped = f"/v1/sms-replies/{help_sid}/answered"
        assert (await n.http.post(helped, headers=FRONT_DESK)).status_code == 404
        # a number with no check-in to answer is a text for the desk like any other
        score_sid = "SM" + uuid.uuid4().hex
        assert "front desk" in (answer_of(await text_in(n, "7", sid=score_sid)) or "")
        listed = (await n.http.get(listing, headers=FRONT_DESK)).json()
        assert [(r["reply_id"], r["text"]) for r in listed["replies"]] == [(score_sid, "7")]
        [scored] = await replies_of(topics, score_sid)
        assert scored["data"]["intent"] == "other"


async def test_help_and_start_answer_a_spanish_client_in_spanish(
    infra: Infra, topics: TopicLog
) -> None:
    client = sms_client("es-help", language="es")
    async with SmsApiFake(auth_token=SMS_TOKEN) as sms, notifier(infra, sms) as n:
        await n.receive(client)
        help_sid, start_sid = "SM" + uuid.uuid4().hex, "SM" + uuid.uuid4().hex
        helped = answer_of(await text_in(n, "¿Ayuda?", sid=help_sid))
        assert helped is not None
        # the program (chain and location), the clinic's phone, how to stop: in Spanish
        assert helped.startswith("Northwest Neuromuscular Therapy, Beaverton")
        assert "llame al +15035550100" in helped and "Responda STOP" in helped
        assert "Reply" not in helped
        started = answer_of(await text_in(n, "START", sid=start_sid))
        assert started is not None
        assert "vuelven a estar activos" in started and "STOP" in started
        assert "Reply" not in started
        assert [e["data"]["intent"] for e in await replies_of(topics, help_sid)] == ["help"]
        assert [e["data"]["intent"] for e in await replies_of(topics, start_sid)] == ["start"]


@pytest.mark.parametrize("word", ["STOP", "cancel"])
async def test_stop_and_cancel_stop_the_next_sms_and_start_resumes(
    infra: Infra, topics: TopicLog, word: str
) -> None:
    client = sms_client(f"stop-{word.lower()}")
    client_id = client.client.client_id
    async with SmsApiFake(auth_token=SMS_TOKEN) as sms, notifier(infra, sms) as n:
        await n.receive(client)
        await n.receive(visit_for(client))
        assert {r["channel"] for r in await n.store.for_client(client_id)} == {"sms"}

        sid = "SM" + uuid.uuid4().hex
        assert answer_of(await text_in(n, word, sid=sid)) is None  # the provider confirms it
        [event] = await replies_of(topics, sid)
        assert event["data"]["intent"] == "stop"
        # after STOP we answer nothing else (the carriers allow one confirmation, theirs)
        assert answer_of(await text_in(n, "are you there?")) is None
        preferences = await n.http.get(
            f"/v1/clients/{client_id}/contact-preferences", headers=FRONT_DESK
        )
        assert preferences.json()["sms_stopped"] is True

        n.clock.at = VISIT  # both reminders are due: the STOP holds them back

        async def settled() -> list[dict[str, Any]] | None:
            records = await n.store.for_client(client_id)
            return records if all(r["status"] != "scheduled" for r in records) else None

        records = await until(settled)
        assert {(r["status"], r["reason"]) for r in records} == {("suppressed", "sms_stopped")}
        assert sms.messages == []

        assert "on again" in (answer_of(await text_in(n, "unstop")) or "")
        later = visit_for(client, start=VISIT + timedelta(days=7), n=2)
        await n.receive(later)
        n.clock.at = later.start - timedelta(hours=1)
        await sms.wait_for_requests(2)  # the next visit's reminders go out again
        assert all(m["To"] == PHONE for m in sms.messages)


async def test_the_webhook_refuses_a_form_without_a_message_id_and_unknown_numbers_get_nothing(
    infra: Infra, topics: TopicLog
) -> None:
    async with SmsApiFake(auth_token=SMS_TOKEN) as sms, notifier(infra, sms) as n:
        params = {"From": PHONE, "To": "+15035550100", "Body": "Y"}
        refused = await n.http.post(
            "/v1/sms/inbound",
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(SMS_TOKEN, INBOUND_URL, params),
            },
        )
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "MessageSid"]
        sid = "SM" + uuid.uuid4().hex
        assert answer_of(await text_in(n, "hello", sid=sid, phone="+15035559999")) is None
        await topics.caught_up()
        assert topics.events(type="reply.received", subject=sid) == []


def test_the_notifier_serves_the_front_desks_replies(infra: Infra) -> None:
    app = build_app(settings_for(infra, "test-sms-replies-routes"))
    paths = set(app.openapi()["paths"])
    assert {
        "/v1/sms/inbound",
        "/v1/locations/{location_id}/sms-replies",
        "/v1/sms-replies/{reply_id}/answered",
    } <= paths
