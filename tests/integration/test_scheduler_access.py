"""Who may change a visit, and how long a signed link works, over the scheduler's
HTTP API on the real broker and Redis: a therapist's key changes only the
therapist's own visits; signed links expire a policy period after their visit, the
earlier form without an expiry is refused, and a link no longer acts on a
cancelled visit."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.scheduler.store import CalendarChange, CalendarStore
from shared import links
from shared.chain import load_chain_config
from shared.infra import Infra
from tests.integration.test_scheduler_backfill import CHAIN, DESK, three_plans
from tests.integration.test_scheduler_visits import (
    FRONT_DESK,
    START,
    Scheduler,
    a_plan,
    booked,
    scheduler_on,
)
from tests.support import until

pytestmark = pytest.mark.integration

ANA = {"Authorization": "Bearer demo-therapist-ana"}  # t-ana, at beaverton


@pytest.fixture
async def scheduler(infra: Infra) -> AsyncIterator[Scheduler]:
    async with scheduler_on(infra, infra.kafka_bootstrap_servers) as running:
        yield running


async def test_a_therapist_changes_only_their_own_visits(scheduler: Scheduler) -> None:
    bens = booked(await scheduler.receive(a_plan("ben", therapist="t-ben")))
    anas = booked(await scheduler.receive(a_plan("ana", therapist="t-ana")))
    assert bens and anas
    assert {v.therapist_id for v in bens} == {"t-ben"}
    assert {v.therapist_id for v in anas} == {"t-ana"}

    for verb, body in (("reschedule", {}), ("cancel", {"by": "clinic"})):
        refused = await scheduler.http.post(
            f"/v1/visits/{bens[0].visit_id}/{verb}", json=body, headers=ANA
        )
        assert refused.status_code == 403, refused.text
        assert "only the visit's therapist" in refused.json()["detail"]

    moved = await scheduler.http.post(
        f"/v1/visits/{anas[0].visit_id}/reschedule", json={}, headers=ANA
    )
    assert moved.status_code == 202, moved.text
    assert moved.json()["data"]["therapist_id"] == "t-ana"  # it stays the therapist's own
    cancelled = await scheduler.http.post(
        f"/v1/visits/{anas[1].visit_id}/cancel", json={"by": "clinic"}, headers=ANA
    )
    assert cancelled.status_code == 202, cancelled.text
    # the front desk still changes any visit at its location
    desk = await scheduler.http.post(
        f"/v1/visits/{bens[0].visit_id}/cancel", json={"by": "client"}, headers=FRONT_DESK
    )
    assert desk.status_code == 202, desk.text


def _earlier_form(secret: str, *names: str) -> str:
    """A signature as links were signed before they carried an expiry."""
    digest = hmac.new(secret.encode(), "\x1f".join(names).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


async def test_a_signed_link_expires_after_its_visit_and_the_earlier_form_is_refused(
    scheduler: Scheduler,
) -> None:
    visit = booked(await scheduler.receive(a_plan("expiry")))[0]
    path = f"/v1/visits/{visit.visit_id}.ics"
    secret = scheduler.runtime.base.settings.link_secret.get_secret_value()
    valid_for = scheduler.runtime.chain.policy_for(visit.location_id).link_valid_after_visit
    assert valid_for == timedelta(days=30)
    sig = links.sign(secret, "visit", visit.visit_id, expires=visit.start + valid_for)

    assert (await scheduler.http.get(path, params={"sig": sig})).status_code == 200
    old = _earlier_form(secret, "visit", visit.visit_id)
    assert (await scheduler.http.get(path, params={"sig": old})).status_code == 401
    longer = f"{int((visit.start + timedelta(days=3650)).timestamp())}.{sig.partition('.')[2]}"
    assert (await scheduler.http.get(path, params={"sig": longer})).status_code == 401

    scheduler.clock.at = visit.start + valid_for + timedelta(seconds=1)
    expired = await scheduler.http.get(path, params={"sig": sig})
    assert expired.status_code == 401 and "detail" in expired.json()
    # staff keys are not links: they still open it
    assert (await scheduler.http.get(path, headers=FRONT_DESK)).status_code == 200


@pytest.mark.parametrize(
    "sig", ["", ".", "1.", "\u00e9\u00e8.\u2603", "9" * 40 + ".x", "%00", "\x7f" * 300]
)
async def test_signatures_of_any_characters_are_refused_not_errors(
    scheduler: Scheduler, sig: str
) -> None:
    for path in ("/v1/visits/v-x.ics", "/v1/clients/c-x/calendar.ics", "/v1/waitlist-offers/o-x"):
        answer = await scheduler.http.get(path, params={"sig": sig})
        assert answer.status_code == 401, (path, answer.text)
        assert "detail" in answer.json()


@pytest.fixture
async def clinic(infra: Infra, tmp_path: Path) -> AsyncIterator[Scheduler]:
    chain = tmp_path / "chain.yaml"
    chain.write_text(CHAIN)
    load_chain_config(chain)
    async with scheduler_on(
        infra, infra.kafka_bootstrap_servers, offering=True, chain=chain
    ) as running:
        yield running


async def test_a_signed_link_no_longer_acts_on_a_cancelled_visit(clinic: Scheduler) -> None:
    a, b, _ = await three_plans(clinic)
    first = (await clinic.http.get(f"/v1/clients/{a.client_id}/visits", headers=DESK)).json()
    clinic.clock.at = START + timedelta(minutes=5)
    freed = await clinic.http.post(
        f"/v1/visits/{first['visits'][0]['visit_id']}/cancel", json={"by": "clinic"}, headers=DESK
    )
    assert freed.status_code == 202

    async def offer_to_b() -> str | None:
        waiting = (await clinic.http.get("/v1/locations/tiny/waitlist", headers=DESK)).json()
        return next(
            (w["open_offer"] for w in waiting["waiting"] if w["plan_id"] == b.plan_id), None
        )

    offer_id = await until(offer_to_b)
    offer = (await clinic.http.get(f"/v1/waitlist-offers/{offer_id}", headers=DESK)).json()
    secret = clinic.runtime.base.settings.link_secret.get_secret_value()
    sig = links.sign(secret, "offer", offer_id, expires=START + timedelta(days=60))
    # the offered visit is cancelled (as a clinic closing that day would)
    store = CalendarStore(clinic.runtime.redis, clinic.runtime.keys)
    await store.apply(CalendarChange(free={offer["visit_id"]: "cancelled"}), now=clinic.clock.at)

    for action in ("accept", "decline"):
        gone = await clinic.http.post(
            f"/v1/waitlist-offers/{offer_id}/{action}", params={"sig": sig}
        )
        assert gone.status_code == 410, gone.text
        assert "cancelled" in gone.json()["detail"]
    # the link still opens the offer to read
    read = await clinic.http.get(f"/v1/waitlist-offers/{offer_id}", params={"sig": sig})
    assert read.status_code == 200
