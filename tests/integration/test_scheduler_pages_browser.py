"""The visit and offer pages in a real browser (Debian's headless Chromium) with
JavaScript switched off: the scheduler behind a real HTTP server on the run's
broker and Redis, and the link exactly as the notifier writes it into a reminder
(``compose``, signed with the deployment's link secret). The page shows the visit's
local time in the client's language; opening it publishes nothing; Confirm publishes
``visit.confirmed`` once and the day's calendar shows the visit confirmed; Cancel
says before it is pressed that it counts as late inside the window; a move to a
proposed time publishes ``visit.rescheduled``; an offer's Accept books the visit.
Screenshots go to var/screenshots/."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect

from services.notifier import messages
from services.notifier.compose import Links, compose
from services.notifier.delivery import Route
from services.scheduler import api, calendar_api, pages_api, waitlist_api
from services.scheduler.offer_round import offer_rounds
from services.scheduler.outbox import relay
from shared import links
from shared.chain import load_chain_config
from shared.events import VisitBooked
from shared.infra import Infra
from shared.local_time import when_local
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import SchedulerSettings
from tests.conftest import DEMO_CHAIN, ROOT
from tests.integration.test_scheduler_backfill import CHAIN as TINY_CHAIN
from tests.integration.test_scheduler_backfill import DESK, offered_to, three_plans
from tests.integration.test_scheduler_pages import events_of
from tests.integration.test_scheduler_visits import (
    FRONT_DESK,
    START,
    Scheduler,
    a_plan,
    booked,
)
from tests.support import SettableClock, TopicLog, served

pytestmark = pytest.mark.integration
SCREENSHOTS = ROOT / "var" / "screenshots"
WAIT_MS = 30_000
LA = "America/Los_Angeles"
PAGE_LINK = re.compile(r"https?://\S+/manage\?sig=\S+")


@asynccontextmanager
async def scheduler_served(
    infra: Infra, *, chain: Path = DEMO_CHAIN, offering: bool = False
) -> AsyncIterator[tuple[str, Scheduler]]:
    """The scheduler's routes (pages among them), its outbox relay and (``offering``)
    the waitlist's offer rounds behind uvicorn on a free port, with a settable clock;
    its address, and the scheduler to hand plan events to."""
    settings = SchedulerSettings(
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        REDIS_URL=infra.redis_url,
        CLINICFLOW_REDIS_NAMESPACE=f"test-pages-browser-{uuid.uuid4().hex[:8]}",
        CLINICFLOW_CHAIN_CONFIG=str(chain),
        CLINICFLOW_ENV="test",
        API_RATE_LIMIT_PER_MINUTE=60_000,
        API_RATE_LIMIT_BURST=10_000,
    )
    app: FastAPI = build_service(
        service="scheduler",
        settings=settings,
        description="scheduler under test",
        routers=[api.router, calendar_api.router, waitlist_api.router, pages_api.router],
        background=[relay, *([offer_rounds] if offering else [])],
    )
    async with served(lambda _: app, settings) as url:
        runtime: Runtime = app.state.runtime
        clock = SettableClock(START)
        runtime.base.clock = clock
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield url, Scheduler(http=http, runtime=runtime, clock=clock)


def reminder_link(url: str, at: Scheduler, visit: VisitBooked, language: str) -> str:
    """The link of the visit's reminder as the notifier writes it, to this scheduler."""
    urls = Links(
        secret=at.runtime.base.settings.link_secret.get_secret_value(),
        confirm=f"{url}/v1/visits/{{visit_id}}/manage?sig={{sig}}&lang={{lang}}",
        offer=f"{url}/v1/waitlist-offers/{{offer_id}}/manage?sig={{sig}}&lang={{lang}}",
        checkin=f"{url}/v1/checkins/{{notification_id}}?sig={{sig}}",
    )
    record = {
        "kind": "reminder",
        "notification_id": f"n-{visit.visit_id}",
        "client_id": visit.client_id,
        "location_id": visit.location_id,
        "visit_id": visit.visit_id,
        "context": {"visit_start": visit.start.isoformat()},
    }
    message = compose(
        record,
        way=Route(channel="email", to="client@example.com", template="email"),
        language=language,
        chain=load_chain_config(DEMO_CHAIN),
        plan=None,
        urls=urls,
        templates=messages.Templates(),
        sent_at=at.clock.now(),
    )
    found = PAGE_LINK.search(message.body)
    assert found is not None, message.body
    return found.group(0)


async def no_script_page(browser: Browser) -> Page:
    context = await browser.new_context(java_script_enabled=False)
    return await context.new_page()


async def nothing_published_by_opening(
    page: Page, link: str, topics: TopicLog, visit_id: str
) -> None:
    """Open ``link`` twice (a mail scanner, then the client): no event for the visit."""
    await topics.caught_up()
    before = events_of(topics, visit_id)
    for _ in range(2):
        opened = await page.goto(link)
        assert opened is not None and opened.status == 200
    await topics.caught_up()
    assert events_of(topics, visit_id) == before


async def day_status(at: Scheduler, visit: VisitBooked) -> str:
    day = visit.start.astimezone(at.runtime.chain.location(visit.location_id).zone).date()
    answer = await at.http.get(
        f"/v1/locations/{visit.location_id}/calendar",
        params={"date": day.isoformat()},
        headers=FRONT_DESK,
    )
    shown = {v["visit_id"]: v for room in answer.json()["rooms"] for v in room["visits"]}
    return str(shown[visit.visit_id]["status"])


def on_topic(topics: TopicLog, event_type: str, visit_id: str) -> list[dict[str, Any]]:
    return [e for e in topics.events(type=event_type) if e["subject"] == visit_id]


async def test_a_spanish_client_confirms_from_the_reminders_link(
    infra: Infra, topics: TopicLog, browser: Browser
) -> None:
    async with scheduler_served(infra) as (url, at):
        visit = booked(await at.receive(a_plan("browser-confirm")))[0]
        link = reminder_link(url, at, visit, "es-MX")
        assert "lang=es" in link
        page = await no_script_page(browser)
        await nothing_published_by_opening(page, link, topics, visit.visit_id)

        await expect(page.locator("html")).to_have_attribute("lang", "es")
        await expect(page.locator("#when")).to_have_text(when_local(visit.start, LA, "es"))
        await expect(page.locator("#where")).to_contain_text("Beaverton")
        await expect(page.locator("#status")).to_have_text("Reservada")
        await page.screenshot(path=str(_shot("visit-page-es.png")), full_page=True)

        await page.get_by_role("button", name="Confirmar mi cita").click()
        await expect(page.locator("main")).to_contain_text("está confirmada", timeout=WAIT_MS)
        await page.screenshot(path=str(_shot("visit-confirmed-es.png")), full_page=True)
        (confirmed,) = await topics.wait_for(
            lambda: on_topic(topics, "visit.confirmed", visit.visit_id)
        )
        assert confirmed["data"]["via"] == "link"
        assert datetime.fromisoformat(confirmed["data"]["start"]) == visit.start
        assert await day_status(at, visit) == "confirmed"

        # back on the page: confirmed, and not asked again
        await page.get_by_role("link", name="Volver a su cita").click()
        await expect(page.locator("#status")).to_have_text("Confirmada", timeout=WAIT_MS)
        await expect(page.get_by_role("button", name="Confirmar mi cita")).to_have_count(0)
        await topics.caught_up()
        assert len(on_topic(topics, "visit.confirmed", visit.visit_id)) == 1


async def test_the_cancel_page_says_it_is_late_inside_the_window_before_it_is_pressed(
    infra: Infra, topics: TopicLog, browser: Browser
) -> None:
    async with scheduler_served(infra) as (url, at):
        visit = booked(await at.receive(a_plan("browser-cancel")))[1]
        at.clock.at = visit.start - timedelta(hours=5)
        link = reminder_link(url, at, visit, "en")
        page = await no_script_page(browser)
        await nothing_published_by_opening(page, link, topics, visit.visit_id)

        warning = page.locator("#cancel [role=alert]")
        await expect(warning).to_have_text(
            "Cancelling now counts as a late cancellation: the visit is less than 24 hours away."
        )
        await page.screenshot(path=str(_shot("visit-page-late-cancel.png")), full_page=True)
        await page.get_by_role("button", name="Cancel my visit").click()
        await expect(page.locator("main")).to_contain_text(
            "It counts as a late cancellation.", timeout=WAIT_MS
        )
        (cancelled,) = await topics.wait_for(
            lambda: on_topic(topics, "visit.cancelled", visit.visit_id)
        )
        assert (cancelled["data"]["late"], cancelled["data"]["cause"]) == (True, "client")

        # the page of a cancelled visit says so and has no buttons
        await page.goto(link)
        await expect(page.locator("#status")).to_have_text("Cancelled")
        await expect(page.get_by_role("button")).to_have_count(0)


async def test_a_move_to_a_proposed_time_from_the_page(
    infra: Infra, topics: TopicLog, browser: Browser
) -> None:
    async with scheduler_served(infra) as (url, at):
        visit = booked(await at.receive(a_plan("browser-move")))[1]
        link = reminder_link(url, at, visit, "en")
        page = await no_script_page(browser)
        await nothing_published_by_opening(page, link, topics, visit.visit_id)

        proposals = page.locator("#reschedule button")
        count = await proposals.count()
        assert 1 <= count <= 3
        chosen = proposals.first
        start = datetime.fromisoformat(str(await chosen.get_attribute("value")))
        await expect(chosen).to_have_text(when_local(start, LA, "en"))
        await chosen.click()
        await expect(page.locator("main")).to_contain_text(
            f"Your visit is moved to {when_local(start, LA, 'en')}.", timeout=WAIT_MS
        )
        (moved,) = await topics.wait_for(
            lambda: on_topic(topics, "visit.rescheduled", visit.visit_id)
        )
        assert datetime.fromisoformat(moved["data"]["start"]) == start
        assert datetime.fromisoformat(moved["data"]["previous_start"]) == visit.start


async def test_the_offer_pages_accept_books_the_visit(
    infra: Infra, topics: TopicLog, browser: Browser, tmp_path: Path
) -> None:
    chain = tmp_path / "chain.yaml"
    chain.write_text(TINY_CHAIN)
    async with scheduler_served(infra, chain=chain, offering=True) as (url, at):
        a, b, _ = await three_plans(at)
        visits = (await at.http.get(f"/v1/clients/{a.client_id}/visits", headers=DESK)).json()
        freed = visits["visits"][0]
        at.clock.at += timedelta(minutes=5)
        cancel = await at.http.post(
            f"/v1/visits/{freed['visit_id']}/cancel", json={"by": "client"}, headers=DESK
        )
        assert cancel.status_code == 202
        offer_id = await offered_to(at, b.plan_id)
        secret = at.runtime.base.settings.link_secret.get_secret_value()
        sig = links.sign(secret, "offer", offer_id, expires=START + timedelta(days=60))
        link = f"{url}/v1/waitlist-offers/{offer_id}/manage?sig={sig}&lang=es"

        page = await no_script_page(browser)
        await topics.caught_up()
        before = topics.for_client("visit.booked", b.client_id)
        for _ in range(2):
            opened = await page.goto(link)
            assert opened is not None and opened.status == 200
        await topics.caught_up()
        assert topics.for_client("visit.booked", b.client_id) == before == []
        start = datetime.fromisoformat(freed["start"])
        await expect(page.locator("#when")).to_have_text(when_local(start, LA, "es"))
        await page.screenshot(path=str(_shot("offer-page-es.png")), full_page=True)

        await page.get_by_role("button", name="Aceptar esta hora").click()
        await expect(page.locator("main")).to_contain_text(
            f"Reservada: su cita del {when_local(start, LA, 'es')}.", timeout=WAIT_MS
        )
        (booked_b,) = await topics.wait_for(lambda: topics.for_client("visit.booked", b.client_id))
        assert datetime.fromisoformat(booked_b["data"]["start"]) == start
        await page.goto(link)
        await expect(page.locator("main")).to_contain_text("Usted aceptó esta hora")
        await expect(page.get_by_role("button")).to_have_count(0)


def _shot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
