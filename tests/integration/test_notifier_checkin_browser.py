"""A Spanish client's check-in, in a real browser (Debian's headless Chromium): the
notifier behind a real HTTP server on the run's broker and Redis, a real SMTP server,
the plan the planner makes. The aftercare e-mail carries the home program in Spanish;
the check-in e-mail's link opens a Spanish page with the visit's local time and place;
opening it records nothing, and pressing a button answers with a Spanish page and
publishes ``checkin.replied`` once. Screenshots go to var/screenshots/."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, expect

from services.notifier.api import router
from services.notifier.channels import channels_from
from services.notifier.compose import visit_time
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import handlers
from services.notifier.messages import when_local
from services.notifier.store import NotificationStore
from services.planner.domain import build_plan
from shared import home_texts as texts
from shared.chain import Policy
from shared.codec import wrap
from shared.envelope import Trace
from shared.events import EventData, IntakeSubmitted, PlanCreated
from shared.events.intake import (
    ClientRecord,
    Complaint,
    ContactConsent,
    Health,
    Precaution,
    Preferences,
    Screening,
)
from shared.events.visits import VisitCompleted
from shared.infra import Infra
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import NotifierSettings
from tests.conftest import DEMO_CHAIN, ROOT
from tests.notifier_fakes import ReceivedMail, SmtpFake
from tests.support import SettableClock, TopicLog, eventually, served

pytestmark = pytest.mark.integration
SCREENSHOTS = ROOT / "var" / "screenshots"
WAIT_MS = 30_000

START = datetime(2027, 3, 10, 17, tzinfo=UTC)  # Wednesday 09:00 in Beaverton (PST)
VISIT = datetime(2027, 3, 15, 16, tzinfo=UTC)  # Monday 09:00 (PDT: after the spring change)
CHAIN_NAME = "Northwest Neuromuscular Therapy"
CHECKIN_LINK = re.compile(r"https?://\S+/v1/checkins/\S+")


def spanish_client() -> IntakeSubmitted:
    suffix = uuid.uuid4().hex[:6]
    return IntakeSubmitted(
        intake_id=f"checkin-browser-{suffix}",
        client=ClientRecord(
            client_id=f"client-checkin-browser-{suffix}",
            name="Lucía Navegador",
            email=f"lucia-{suffix}@example.com",
            language="es",
            contact_consent=ContactConsent(email=True),
        ),
        location_id="beaverton",
        complaints=[
            Complaint(region="neck", intensity=6, qualities=["ache"], onset=date(2026, 6, 1))
        ],
        health=Health(precautions=[Precaution(code="blood_thinners")]),
        screening=Screening(outcome="modify"),
        preferences=Preferences(),
        submitted_at=START,
    )


def body_of(mail: ReceivedMail) -> str:
    message: EmailMessage = mail.message
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


async def test_a_spanish_client_answers_the_check_in_from_the_page_in_a_browser(
    infra: Infra, topics: TopicLog, browser: Browser
) -> None:
    client = spanish_client()
    client_id = client.client.client_id
    plan = build_plan(client, policy=Policy())
    assert isinstance(plan, PlanCreated)
    completed = VisitCompleted(
        visit_id=f"visit-{client_id}-1",
        plan_id=plan.plan_id,
        client_id=client_id,
        location_id="beaverton",
        therapist_id="t-ana",
        pain_before=6,
        pain_after=3,
        completed_at=VISIT + timedelta(hours=1),
    )
    clock = SettableClock(START)

    async with SmtpFake() as smtp:
        settings = NotifierSettings(
            KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
            REDIS_URL=infra.redis_url,
            CLINICFLOW_REDIS_NAMESPACE=f"test-checkin-browser-{uuid.uuid4().hex[:8]}",
            CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN),
            CLINICFLOW_ENV="test",
            API_RATE_LIMIT_PER_MINUTE=60_000,
            API_RATE_LIMIT_BURST=10_000,
            NOTIFIER_POLL_INTERVAL_S=0.05,
            NOTIFIER_SMTP_HOST=smtp.host,
            NOTIFIER_SMTP_PORT=smtp.port,
            NOTIFIER_SMTP_SECURITY="none",
            NOTIFIER_EMAIL_FROM="care@northwest-nmt.example",
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
        async with served(lambda _: app, settings) as url:
            runtime: Runtime = app.state.runtime
            runtime.base.clock = clock

            async def receive(data: EventData) -> None:
                """Hand an event to the notifier as its consumer would, and publish."""
                cause = wrap(
                    data,
                    event_id=str(uuid.uuid4()),
                    service="test",
                    subject=client_id,
                    trace=Trace(chainid="northwest-nmt", correlationid=client.intake_id),
                    time=clock.now(),
                )
                handle = handlers(runtime, frozenset(channels))[data.event_type]  # type: ignore[arg-type]
                await runtime.publisher.publish(await handle(cause, data))

            def mail_with(subject: str) -> ReceivedMail | None:
                return next(
                    (m for m in smtp.received if str(m.message["Subject"]).startswith(subject)),
                    None,
                )

            await receive(client)
            await receive(plan)
            clock.at = completed.completed_at
            await receive(completed)

            # the aftercare e-mail: the home program and the precaution's advice, in Spanish
            first = plan.home_program.stretches[0]
            assert first.code is not None
            spanish_name = texts.STRETCHES[first.code].name.es
            aftercare = body_of(await eventually(lambda: mail_with("Cuidados después de")))
            assert f"- {spanish_name}: " in aftercare
            assert "con anticoagulantes salen moratones" in aftercare
            assert first.name not in aftercare and "blood thinners" not in aftercare

            clock.at = completed.completed_at + timedelta(hours=24, minutes=1)
            checkin = body_of(await eventually(lambda: mail_with(f"{CHAIN_NAME}: ¿cómo se")))
            found = CHECKIN_LINK.search(checkin)
            assert found is not None
            link = httpx.URL(found.group(0))
            notification_id = link.path.rsplit("/", 1)[1]
            record = await NotificationStore(runtime.redis, runtime.keys).get(notification_id)
            assert record is not None
            when = when_local(visit_time(record["context"]), "America/Los_Angeles", "es")

            page = await browser.new_page()
            opened = await page.goto(f"{url}{link.raw_path.decode()}")
            assert opened is not None and opened.status == 200
            await expect(page.locator("html")).to_have_attribute("lang", "es")
            question = page.locator("p").first
            await expect(question).to_contain_text("¿Cuánto dolor siente hoy")
            await expect(question).to_contain_text(when)
            await expect(question).to_contain_text("Beaverton")
            await expect(page.get_by_role("button")).to_have_count(11)
            await page.screenshot(path=str(_shot("checkin-page-es.png")), full_page=True)
            # opening the page (a mail scanner does) records nothing
            await page.reload()
            await topics.caught_up()
            assert topics.for_client("checkin.replied", client_id) == []

            await page.get_by_role("button", name="3 de 10").click()
            await expect(page.locator("body")).to_contain_text(
                "Gracias. Hemos anotado 3/10", timeout=WAIT_MS
            )
            await page.screenshot(path=str(_shot("checkin-thanks-es.png")), full_page=True)

            replied = await topics.wait_for(lambda: topics.for_client("checkin.replied", client_id))
            await topics.caught_up()
            assert len(topics.for_client("checkin.replied", client_id)) == 1
            assert replied[0]["data"]["pain"] == 3
            assert replied[0]["data"]["notification_id"] == notification_id
            assert replied[0]["data"]["channel"] == "email"


def _shot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
