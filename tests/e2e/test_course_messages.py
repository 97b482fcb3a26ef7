"""A whole course as a Spanish-speaking client lives it, on the simulated clock, with
the four services as processes, a real SMTP server (aiosmtpd), the Twilio-compatible
test server and headless Chromium: intake, the booking confirmation, reminders, a
"Y" texted back, the visit confirmed from the e-mail's page, a move by the clinic
(one notice), each visit completed as its time comes, aftercare with the home program
in Spanish, the check-in answered from its page, the taper revision (one notice) and
the course completed. Every message the client got arrived once, in order, in
Spanish, and the SMS server carried none of them (the client reads e-mail)."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.async_api import Browser

from services.notifier.sms_inbound import twilio_signature
from shared import home_texts
from shared.clock import parse_clock
from shared.infra import local_infra
from shared.stack import Stack, free_ports, running_stack
from tests.conftest import demo_chain_with
from tests.integration.test_notifier_flow import body_of
from tests.notifier_fakes import SmsApiFake, SmtpFake
from tests.support import TopicLog

pytestmark = pytest.mark.e2e

SIM_START = "2027-04-05T15:00:00Z"  # Monday 08:00 in Beaverton (PDT)
SIM_SPEED = 28800  # one real second is eight simulated hours
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
ADMIN = {"Authorization": "Bearer demo-admin"}
PHONE = "+15035550177"
SMS_TOKEN = "course-sms-auth-token"
PAIN_CARRIED_IN = [7, 6, 4, 3, 2, 2, 2, 2]  # good progress: the review tapers the course
LINK = re.compile(r"https?://\S+")
NOTICES = ("booking_confirmation", "visit_change", "plan_update", "offer_accepted")


@contextmanager
def course_stack(smtp: SmtpFake, sms: SmsApiFake, workdir: Path) -> Iterator[Stack]:
    """The four services on a broker of their own: the run's other stacks use the same
    consumer group names, and would share this one's records."""
    ports = free_ports()
    inbound = f"http://127.0.0.1:{ports['notifier']}/v1/sms/inbound"
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    # at this clock's speed the policy's five minutes of grace are 10 ms: an hour (125 ms)
    # gives a plan's placement, or a revision and the cancels it makes, time to gather
    chain = demo_chain_with(workdir, "course", notice_grace="PT1H")
    with (
        local_infra(workdir=workdir / "infra", env=env) as infra,
        running_stack(
            infra,
            config=chain,
            clock=f"sim:{SIM_START}@{SIM_SPEED}x",
            ports=ports,
            extra_env={
                "CLINICFLOW_REDIS_NAMESPACE": f"course-{uuid.uuid4().hex[:8]}",
                "CLINICFLOW_ENV": "test",
                "NOTIFIER_POLL_INTERVAL_S": "0.1",
                "NOTIFIER_OUTBOX_PATH": str(workdir / "outbox.jsonl"),
                "NOTIFIER_SMTP_HOST": smtp.host,
                "NOTIFIER_SMTP_PORT": str(smtp.port),
                "NOTIFIER_SMTP_SECURITY": "none",
                "NOTIFIER_EMAIL_FROM": "care@northwest-nmt.example",
                "NOTIFIER_SMS_BASE_URL": sms.base_url,
                "NOTIFIER_SMS_ACCOUNT_SID": sms.account_sid,
                "NOTIFIER_SMS_AUTH_TOKEN": SMS_TOKEN,
                "NOTIFIER_SMS_FROM": "+15035550100",
                "NOTIFIER_SMS_INBOUND_URL": inbound,
                "API_RATE_LIMIT_PER_MINUTE": "60000",
                "API_RATE_LIMIT_BURST": "10000",
            },
            log_dir=workdir / "logs",
        ) as stack,
    ):
        yield stack


@dataclass
class Course:
    """What the test knows and has done so far."""

    stack: Stack
    smtp: SmtpFake
    client_id: str = ""
    intake_id: str = ""
    address: str = ""
    completed: list[str] = field(default_factory=list)
    to_confirm: str | None = None  # the visit the client confirms from its page
    confirmed_by_link: str | None = None
    confirmed_by_text: str | None = None
    moved: str | None = None
    answered_checkin: bool = False

    def now(self) -> datetime:
        env = self.stack.environment
        return parse_clock(
            env["CLINICFLOW_CLOCK"], anchor=float(env["CLINICFLOW_CLOCK_ANCHOR"])
        ).now()

    async def get(self, service: str, path: str) -> Any:
        async with httpx.AsyncClient(base_url=self.stack.urls[service], timeout=30) as http:
            answer = await http.get(path, headers=FRONT_DESK)
        if answer.status_code == 404:  # not heard of the client yet
            return None
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def visits(self) -> list[dict[str, Any]]:
        shown = await self.get("scheduler", f"/v1/clients/{self.client_id}/visits")
        return sorted(shown["visits"] if shown else [], key=lambda v: v["start"])

    async def log(self) -> list[dict[str, Any]]:
        shown = await self.get("notifier", f"/v1/clients/{self.client_id}/notifications")
        return list(shown["notifications"]) if shown else []

    async def inbox(self) -> list[tuple[dict[str, Any], EmailMessage]]:
        """Each e-mail the client received with its notification (by Message-ID)."""
        by_ref = {
            str(n["provider_ref"]).strip("<>"): n for n in await self.log() if n["provider_ref"]
        }
        found = []
        for mail in self.smtp.received:
            if self.address in mail.rcpt_tos:
                message = mail.message
                found.append((by_ref.get(str(message["Message-ID"]).strip("<>"), {}), message))
        return found

    async def mail_of(self, kind: str, **match: Any) -> EmailMessage | None:
        for notification, message in await self.inbox():
            if notification.get("kind") == kind and all(
                notification.get(k) == v for k, v in match.items()
            ):
                return message
        return None


async def test_a_whole_course_reaches_a_spanish_client_once_in_order(
    browser: Browser, tmp_path: Path
) -> None:
    async with SmtpFake() as smtp, SmsApiFake(auth_token=SMS_TOKEN) as sms:
        stacked = course_stack(smtp, sms, tmp_path)
        stack = await asyncio.to_thread(stacked.__enter__)
        try:
            topics = await TopicLog(stack.infra.kafka_bootstrap_servers).start()
            try:
                course = Course(stack=stack, smtp=smtp)
                await play(course, topics, browser)
                await check_the_inbox(course, topics, sms)
            finally:
                await topics.stop()
        finally:
            await asyncio.to_thread(stacked.__exit__, None, None, None)


async def play(course: Course, topics: TopicLog, browser: Browser) -> None:
    """Intake, then each step as its moment comes, until the course is completed."""
    course.address = f"lucia-{uuid.uuid4().hex[:8]}@example.com"
    document = {
        "location_id": "beaverton",
        "client": {
            "name": "Lucía Curso",
            "email": course.address,
            "phone": PHONE,
            "language": "es",
            "contact_consent": {"email": True, "sms": True},
        },
        # chronic, mild, one precaution: the shortest chronic course (7 sessions), so
        # the review after four tapers it and the course ends a month later
        "complaints": [{"region": "low_back", "intensity": 2, "onset": "2026-12-28"}],
        "health": {"precautions": [{"code": "blood_thinners"}]},
        "preferences": {"modality": "nmt", "times": ["morning", "afternoon"]},
    }
    async with httpx.AsyncClient(base_url=course.stack.urls["intake"], timeout=30) as http:
        accepted = await http.post("/v1/intakes", json=document, headers=FRONT_DESK)
    assert accepted.status_code == 202, accepted.text
    course.intake_id, course.client_id = accepted.json()["intake_id"], accepted.json()["client_id"]

    deadline = asyncio.get_running_loop().time() + 240
    while not topics.for_client("plan.completed", course.client_id):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the course did not end in time: {await state(course, topics)}")
        assert not course.stack.dead(), course.stack.dead()
        await step(course, topics, browser)
        await asyncio.sleep(0.2)
    # the last notice (the course completed) is held for its grace period
    while not [n for n in await course.log() if _completed_notice(n)]:
        assert asyncio.get_running_loop().time() < deadline, "no notice of the course's end"
        await asyncio.sleep(0.2)


async def state(course: Course, topics: TopicLog) -> str:
    """Where the course stands, for a failure's message."""
    plans = [
        (e["type"], e["data"].get("change") or e["data"].get("outcome"), e["data"].get("phases"))
        for e in topics.events()
        if e["type"].startswith("plan.") and e["data"].get("client_id") == course.client_id
    ]
    visits = [(v["sequence"], v["start"], v["status"]) for v in await course.visits()]
    return f"now {course.now()}, plans {plans}, visits {visits}, done {len(course.completed)}"


def _completed_notice(notification: dict[str, Any]) -> bool:
    return notification["kind"] in NOTICES and notification["status"] == "sent"


async def step(course: Course, topics: TopicLog, browser: Browser) -> None:
    """Whichever action is due now."""
    visits = await course.visits()
    if not visits or await course.mail_of("booking_confirmation") is None:
        return
    coming = [v for v in visits if v["status"] in ("booked", "confirmed")]
    now = course.now()
    if course.confirmed_by_text is None:  # "Y" confirms the next visit
        course.confirmed_by_text = await text_yes(course, topics)
    started = [v for v in coming if datetime.fromisoformat(v["start"]) <= now]
    for visit in started:  # each visit completed by its therapist once it has begun
        await complete(course, visit)
    if course.moved is None and len(coming) >= 3:  # the clinic moves the third visit
        third = coming[2]
        async with httpx.AsyncClient(base_url=course.stack.urls["scheduler"], timeout=30) as http:
            answer = await http.post(
                f"/v1/visits/{third['visit_id']}/reschedule", json={}, headers=FRONT_DESK
            )
        assert answer.status_code == 202, answer.text
        course.moved = third["visit_id"]
    if course.to_confirm is None:  # the visit after the one "Y" confirmed, from its reminder
        texted = next(v for v in visits if v["visit_id"] == course.confirmed_by_text)
        after = [v for v in coming if v["start"] > texted["start"]]
        course.to_confirm = after[0]["visit_id"] if after else None
    target = next((v for v in coming if v["visit_id"] == course.to_confirm), None)
    if course.confirmed_by_link is None and target is not None:
        reminder = await course.mail_of("reminder", visit_id=target["visit_id"])
        if reminder is not None and datetime.fromisoformat(target["start"]) > now:
            await confirm_from_the_page(course, topics, browser, reminder, target)
    if not course.answered_checkin:
        checkin = await course.mail_of("checkin")
        if checkin is not None:
            await answer_the_checkin(course, topics, browser, checkin)


async def text_yes(course: Course, topics: TopicLog) -> str:
    """The client texts "Y": the answer names the visit, and the scheduler confirms the
    client's next visit (which one depends on the moment); its id."""
    params = {
        "From": PHONE,
        "To": "+15035550100",
        "Body": "Y",
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": "AC" + "f" * 32,
    }
    inbound = course.stack.environment["NOTIFIER_SMS_INBOUND_URL"]
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            inbound,
            content=urlencode(params),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(SMS_TOKEN, inbound, params),
            },
        )
    assert answer.status_code == 200, answer.text
    assert "confirmada" in answer.text  # in the client's language
    [confirmed] = await topics.wait_for(
        lambda: [
            e
            for e in topics.for_client("visit.confirmed", course.client_id)
            if e["data"]["via"] == "sms"
        ]
    )
    return str(confirmed["data"]["visit_id"])


async def complete(course: Course, visit: dict[str, Any]) -> None:
    n = len(course.completed)
    pain = PAIN_CARRIED_IN[min(n, len(PAIN_CARRIED_IN) - 1)]
    async with httpx.AsyncClient(base_url=course.stack.urls["scheduler"], timeout=30) as http:
        answer = await http.post(
            f"/v1/visits/{visit['visit_id']}/complete",
            json={"pain_before": pain, "pain_after": max(0, pain - 2), "techniques": []},
            headers=ADMIN,
        )
    assert answer.status_code in (200, 202), answer.text
    course.completed.append(visit["visit_id"])


async def confirm_from_the_page(
    course: Course,
    topics: TopicLog,
    browser: Browser,
    reminder: EmailMessage,
    visit: dict[str, Any],
) -> None:
    """The reminder's link opens the visit's page; pressing Confirm confirms it."""
    [link] = [u for u in LINK.findall(body_of(reminder)) if "/manage?" in u]
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        await page.goto(link)
        await page.get_by_role("button", name="Confirmar mi cita").click()
    finally:
        await context.close()
    await topics.wait_for(
        lambda: [
            e
            for e in topics.for_client("visit.confirmed", course.client_id)
            if e["data"]["visit_id"] == visit["visit_id"] and e["data"]["via"] == "link"
        ]
    )
    course.confirmed_by_link = visit["visit_id"]


async def answer_the_checkin(
    course: Course, topics: TopicLog, browser: Browser, checkin: EmailMessage
) -> None:
    [link] = [u for u in LINK.findall(body_of(checkin)) if "/checkins/" in u]
    context = await browser.new_context(java_script_enabled=False)
    try:
        page = await context.new_page()
        await page.goto(link)
        await page.get_by_role("button", name="3 de 10").click()
    finally:
        await context.close()
    await topics.wait_for(lambda: topics.for_client("checkin.replied", course.client_id))
    course.answered_checkin = True


async def check_the_inbox(course: Course, topics: TopicLog, sms: SmsApiFake) -> None:
    log = await course.log()
    inbox = await course.inbox()
    sent = [n for n in log if n["status"] == "sent"]
    # once: every message sent reached the client exactly once, and nothing else did
    received = [n.get("notification_id") for n, _ in inbox]
    assert sorted(received, key=str) == sorted((n["notification_id"] for n in sent), key=str)
    assert len(set(received)) == len(received)
    assert [m for m in sms.messages if m.get("To") == PHONE] == []  # e-mail is preferred
    # in order: as they were sent
    order = {n["notification_id"]: n["sent_at"] for n in sent}
    assert [order[i] for i in received] == sorted(order[i] for i in received)

    kinds = [n["kind"] for n, _ in inbox]
    assert kinds[0] == "plan_summary", kinds
    assert kinds.count("booking_confirmation") == 1
    # the clinic's move and the taper revision: one notice each; then the course's end
    later = [(n, m) for n, m in inbox if n["kind"] in ("visit_change", "plan_update")]
    texts = [body_of(m) for _, m in later]
    shown = "\n---\n".join(f"{n['kind']}:\n{t}" for (n, _), t in zip(later, texts, strict=True))
    assert len(later) == 3, shown
    moved, tapered, ended = texts
    assert "Cambiadas:" in moved
    assert "más espaciadas" in tapered and "Canceladas:" in tapered
    assert "Ha completado su tratamiento" in ended
    assert kinds.index("booking_confirmation") < kinds.index("aftercare") < kinds.index("checkin")
    revised = topics.for_client("plan.revised", course.client_id)
    assert [e["data"]["change"] for e in revised] == ["taper"]

    # the aftercare carries the home program and the blood thinners' advice, in Spanish
    aftercare = body_of(next(m for n, m in inbox if n["kind"] == "aftercare"))
    plan = topics.for_client("plan.created", course.client_id)[0]["data"]
    for stretch in plan["home_program"]["stretches"]:
        assert home_texts.STRETCHES[stretch["code"]].name.es in aftercare
    assert "anticoagulantes" in aftercare
    # and nothing the client read is in English
    english = [
        *(w.en for s in home_texts.STRETCHES.values() for w in (s.name, s.how)),
        *(m.where.en for m in home_texts.SELF_MASSAGE.values()),
        *(a.en for a in home_texts.ADVICE.values() if "{" not in a.en),
    ]
    for notification, message in inbox:
        text = body_of(message)
        assert not [e for e in english if e in text], notification["kind"]
        assert "Hola" in text, notification["kind"]

    # the visits the client confirmed show so, and the visit the clinic moved moved
    confirmed = topics.for_client("visit.confirmed", course.client_id)
    reminded = [
        (n["status"], n["due_at"], n.get("reason"))
        for n in log
        if n["kind"] == "reminder" and n["visit_id"] == course.to_confirm
    ]
    assert {e["data"]["via"] for e in confirmed} == {"sms", "link"}, reminded
    assert course.moved in {
        e["data"]["visit_id"] for e in topics.for_client("visit.rescheduled", course.client_id)
    }
    assert timedelta(0) < course.now() - datetime.fromisoformat(SIM_START.replace("Z", "+00:00"))
