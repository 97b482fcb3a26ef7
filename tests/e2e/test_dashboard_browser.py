"""The ops dashboard in a real browser (Debian's headless Chromium) against the
running stack: sign in with a key, watch the live picture, open a dead letter and
replay it, and see a location's page. Screenshots go to var/screenshots/."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from playwright.async_api import Browser, Page, expect

from shared.stack import Stack
from tests.conftest import ROOT
from tests.support import TopicLog

pytestmark = pytest.mark.e2e
SCREENSHOTS = ROOT / "var" / "screenshots"
WAIT_MS = 30_000


async def signed_in(browser: Browser, url: str, key: str) -> Page:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    await page.goto(url)
    await page.fill("#api-key", key)
    await page.click("#login button[type=submit]")
    await expect(page.locator("#status")).to_have_text("live", timeout=WAIT_MS)
    return page


async def test_the_dashboard_in_a_browser(
    stack: Stack, topics: TopicLog, producer: AIOKafkaProducer, browser: Browser
) -> None:
    # an intake whose data is not an intake: the consumers dead-letter it
    client_id = f"browser-{uuid.uuid4().hex[:8]}"
    envelope = {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/clinicflow/front-desk-import",
        "type": "intake.submitted",
        "subject": client_id,
        "time": "2027-03-08T16:00:00+00:00",
        "datacontenttype": "application/json",
        "dataschema": "urn:clinicflow:schema:intake.submitted:v1",
        "chainid": "northwest-nmt",
        "locationid": "beaverton",
        "correlationid": client_id,
        "data": {"intake_id": "i-broken"},
    }
    bad = await producer.send_and_wait(
        "clinic.intake", key=client_id.encode(), value=json.dumps(envelope).encode()
    )
    record = f"clinic.intake[{bad.partition}]@{bad.offset}"
    await topics.wait_for(
        lambda: [
            e
            for e in topics.events(type="record.deadlettered")
            if e["data"]["source_topic"] == "clinic.intake" and e["data"]["offset"] == bad.offset
        ]
    )

    page = await signed_in(browser, stack.urls["dashboard"], "demo-admin")
    await expect(page.locator("#scope-name")).to_have_text("Northwest Neuromuscular Therapy")
    # every service of the stack answers, each on its own row
    services = page.locator("#services tbody tr")
    await expect(services).to_have_count(4, timeout=WAIT_MS)
    await expect(page.locator("#services tbody")).not_to_contain_text("down")
    for topic in ("clinic.intake", "clinic.plans", "clinic.visits", "clinic.notifications"):
        await expect(page.locator("#flow tbody")).to_contain_text(topic)
    await expect(page.locator("#tile-events")).not_to_have_text("-")
    await expect(page.locator("#totals tbody")).to_contain_text("record.deadlettered")

    row = page.locator("#dead tbody tr", has_text=record).first
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await expect(row).to_contain_text("open")
    await row.get_by_role("button", name="Inspect").click()
    await expect(page.locator("#dead-detail")).to_be_visible()
    await expect(page.locator("#dead-payload")).to_contain_text('"intake_id": "i-broken"')
    await expect(page.locator("#dead-facts")).to_contain_text(record)
    await page.screenshot(path=str(_shot("dashboard-dead-letter.png")), full_page=True)

    await page.click("#dead-replay")
    await expect(page.locator("#dead-result")).to_contain_text(
        "replayed to clinic.intake at offset", timeout=WAIT_MS
    )
    # the record is on its topic again, byte for byte, and dead-lettered again as it is
    replayed = await topics.wait_for(
        lambda: [
            e
            for e in topics.events(type="record.deadlettered")
            if e["data"]["source_topic"] == "clinic.intake"
            and e["data"]["key"] == client_id
            and e["data"]["offset"] != bad.offset
        ]
    )
    assert json.loads(replayed[0]["data"]["payload"]) == envelope
    await expect(page.locator("#dead tbody tr", has_text=record).first).to_contain_text(
        "replayed", timeout=WAIT_MS
    )
    await page.click("#dead-close")
    await page.screenshot(path=str(_shot("dashboard-chain.png")), full_page=True)

    # an ops key sees a location's page, and may not replay
    ops = await signed_in(browser, f"{stack.urls['dashboard']}/locations/beaverton", "demo-ops")
    await expect(ops.locator("#scope-name")).to_have_text(
        "Northwest Neuromuscular Therapy · Beaverton"
    )
    await expect(ops.locator("#locations a.current")).to_have_text("Beaverton")
    await ops.locator("#dead tbody button").first.click()
    await expect(ops.locator("#dead-detail")).to_be_visible()
    await expect(ops.locator("#dead-replay")).to_be_hidden()
    await ops.screenshot(path=str(_shot("dashboard-location.png")), full_page=True)

    # a front desk key is turned away with a reason
    desk = await browser.new_page()
    await desk.goto(stack.urls["dashboard"])
    await desk.fill("#api-key", "demo-frontdesk-beaverton")
    await desk.click("#login button[type=submit]")
    await expect(desk.locator("#login-error")).to_have_text("this key may not read the dashboard")


def _shot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
