"""The visit and offer pages over HTTP against the run's broker and Redis: opened
from a signed link in the client's language, a GET changes nothing, each button is
a form post that runs the command the JSON API runs and answers a small page (200
what happened, 409 why not, 410 once the visit is cancelled); errors before the
record is found stay JSON."""

from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest

from shared import links
from shared.events import VisitBooked
from shared.local_time import when_local
from tests.integration.test_scheduler_backfill import (  # noqa: F401 (the fixture)
    DESK,
    at,
    clinic,
    offered_to,
    three_plans,
    waitlist,
)
from tests.integration.test_scheduler_backfill import sig as offer_sig
from tests.integration.test_scheduler_confirm import confirmations, link
from tests.integration.test_scheduler_visits import (  # noqa: F401 (the fixture)
    FRONT_DESK,
    Scheduler,
    a_plan,
    booked,
    scheduler,
    visits_of,
)
from tests.support import TopicLog

pytestmark = pytest.mark.integration
FORM = {"content-type": "application/x-www-form-urlencoded"}


class Forms(HTMLParser):
    """The forms of a page: action -> the values of its buttons."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.forms: dict[str, list[str | None]] = {}
        self._current = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self._current = str(found["action"]).split("?")[0]
            self.forms[self._current] = []
        elif tag == "button":
            self.forms[self._current].append(found.get("value"))


def page_of(visit: VisitBooked) -> str:
    return f"/v1/visits/{visit.visit_id}/manage"


def events_of(topics: TopicLog, visit_id: str) -> list[str]:
    return [
        e["type"]
        for e in topics.events()
        if e.get("subject") == visit_id or e.get("data", {}).get("visit_id") == visit_id
    ]


async def test_the_visit_page_in_spanish_and_its_confirm_button(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    visits = booked(await scheduler.receive(a_plan("page-confirm")))
    visit = visits[0]
    params = {"sig": link(scheduler, visit.visit_id), "lang": "es"}

    opened = await scheduler.http.get(page_of(visit), params=params)
    assert opened.status_code == 200, opened.text
    assert opened.headers["content-type"].startswith("text/html")
    assert "script-src" not in opened.headers["content-security-policy"]
    assert opened.headers["cache-control"] == "no-store"
    assert when_local(visit.start, "America/Los_Angeles", "es") in opened.text
    assert "Reservada" in opened.text and "<script" not in opened.text
    forms = Forms(opened.text).forms
    assert list(forms) == ["manage/confirm", "manage/cancel", "manage/reschedule"]
    assert 1 <= len(forms["manage/reschedule"]) <= 3
    unknown = await scheduler.http.get(page_of(visit), params={**params, "lang": "fr"})
    assert '<html lang="en">' in unknown.text and "Booked" in unknown.text  # unknown: English

    pressed = await scheduler.http.post(f"{page_of(visit)}/confirm", params=params, headers=FORM)
    assert pressed.status_code == 200, pressed.text
    assert "está confirmada" in pressed.text
    again = await scheduler.http.post(f"{page_of(visit)}/confirm", params=params, headers=FORM)
    assert again.status_code == 200
    (confirmed,) = await topics.wait_for(lambda: confirmations(topics, visit.visit_id))
    assert confirmed["data"]["via"] == "link"
    shown = await scheduler.http.get(page_of(visit), params=params)
    assert "Confirmada" in shown.text and "manage/confirm" not in Forms(shown.text).forms
    await topics.caught_up()
    assert len(confirmations(topics, visit.visit_id)) == 1


async def test_opening_a_page_changes_nothing(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    visit = booked(await scheduler.receive(a_plan("page-get")))[0]
    params = {"sig": link(scheduler, visit.visit_id)}
    await topics.caught_up()
    before = events_of(topics, visit.visit_id)
    shown_before = await visits_of(scheduler, visit.client_id)
    for lang in ("en", "es", "xx"):
        assert (
            await scheduler.http.get(page_of(visit), params={**params, "lang": lang})
        ).is_success
        # a scanner that follows a form's target with a GET changes nothing either
        for action in ("confirm", "cancel", "reschedule"):
            answer = await scheduler.http.get(f"{page_of(visit)}/{action}", params=params)
            assert answer.status_code == 405
    await topics.caught_up()
    assert events_of(topics, visit.visit_id) == before
    assert await visits_of(scheduler, visit.client_id) == shown_before


async def test_cancel_from_the_page_warns_inside_the_window_and_then_the_links_stop_acting(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    visit = booked(await scheduler.receive(a_plan("page-cancel")))[1]
    params = {"sig": link(scheduler, visit.visit_id), "lang": "en"}
    scheduler.clock.at = visit.start - timedelta(hours=30)
    early = await scheduler.http.get(page_of(visit), params=params)
    assert "does not count as late" in early.text
    scheduler.clock.at = visit.start - timedelta(hours=5)
    late = await scheduler.http.get(page_of(visit), params=params)
    assert "counts as a late cancellation: the visit is less than 24 hours away" in late.text

    pressed = await scheduler.http.post(f"{page_of(visit)}/cancel", params=params, headers=FORM)
    assert pressed.status_code == 200, pressed.text
    assert "is cancelled" in pressed.text and "It counts as a late cancellation." in pressed.text
    (cancelled,) = await topics.wait_for(
        lambda: [e for e in topics.events(type="visit.cancelled") if e["subject"] == visit.visit_id]
    )
    data = cancelled["data"]
    assert (data["by"], data["late"], data["cause"]) == ("client", True, "client")

    gone = await scheduler.http.get(page_of(visit), params=params)
    assert gone.status_code == 200 and "This visit was cancelled." in gone.text
    assert Forms(gone.text).forms == {}
    for action in ("confirm", "cancel", "reschedule"):
        answer = await scheduler.http.post(
            f"{page_of(visit)}/{action}", params=params, data={"start": visit.start.isoformat()}
        )
        assert answer.status_code == 410, (action, answer.text)
        assert "no longer changes it" in answer.text


async def test_reschedule_from_the_page_to_a_proposed_time_or_say_why_not(
    scheduler: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    visits = booked(await scheduler.receive(a_plan("page-move")))
    visit = visits[1]
    params = {"sig": link(scheduler, visit.visit_id), "lang": "es"}
    proposed = Forms((await scheduler.http.get(page_of(visit), params=params)).text).forms[
        "manage/reschedule"
    ]
    assert proposed and visit.start.isoformat() not in proposed
    start = str(proposed[0])

    night = visit.start.replace(hour=10)  # 03:00 in Beaverton
    closed = await scheduler.http.post(
        f"{page_of(visit)}/reschedule", params=params, data={"start": night.isoformat()}
    )
    assert closed.status_code == 409 and "La clínica no está abierta a esa hora." in closed.text
    bad = await scheduler.http.post(
        f"{page_of(visit)}/reschedule", params=params, data={"start": "tomorrow"}
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "start"]

    moved = await scheduler.http.post(
        f"{page_of(visit)}/reschedule", params=params, data={"start": start}
    )
    assert moved.status_code == 200, moved.text
    assert when_local(datetime.fromisoformat(start), "America/Los_Angeles", "es") in moved.text
    twice = await scheduler.http.post(
        f"{page_of(visit)}/reschedule", params=params, data={"start": start}
    )
    assert twice.status_code == 200
    events = await topics.wait_for(
        lambda: [
            e for e in topics.events(type="visit.rescheduled") if e["subject"] == visit.visit_id
        ]
    )
    assert datetime.fromisoformat(events[0]["data"]["start"]) == datetime.fromisoformat(start)
    await topics.caught_up()
    assert (
        len([e for e in topics.events(type="visit.rescheduled") if e["subject"] == visit.visit_id])
        == 1
    )


async def test_who_may_open_a_visit_page(scheduler: Scheduler) -> None:  # noqa: F811
    visits = booked(await scheduler.receive(a_plan("page-access")))
    visit, other = visits[0], visits[1]
    assert (await scheduler.http.get(page_of(visit))).status_code == 401
    forged = await scheduler.http.get(
        page_of(visit), params={"sig": link(scheduler, other.visit_id)}
    )
    assert forged.status_code == 401 and "detail" in forged.json()
    secret = scheduler.runtime.base.settings.link_secret.get_secret_value()
    expired = links.sign(secret, "visit", visit.visit_id, expires=scheduler.clock.at)
    assert (await scheduler.http.get(page_of(visit), params={"sig": expired})).status_code == 401
    assert (await scheduler.http.get(page_of(visit), headers=FRONT_DESK)).status_code == 200
    brooklyn = {"Authorization": "Bearer demo-frontdesk-brooklyn"}
    assert (await scheduler.http.get(page_of(visit), headers=brooklyn)).status_code == 404
    missing = await scheduler.http.get("/v1/visits/nope/manage", headers=FRONT_DESK)
    assert missing.status_code == 404 and missing.json() == {"detail": "not found"}
    ops = {"Authorization": "Bearer demo-ops"}
    assert (await scheduler.http.post(f"{page_of(visit)}/confirm", headers=ops)).status_code == 403


async def test_the_offer_page_accepts_or_declines_and_answers_a_lapsed_hold(
    clinic: Scheduler,  # noqa: F811
    topics: TopicLog,
) -> None:
    a, b, c = await three_plans(clinic)
    first = (await clinic.http.get(f"/v1/clients/{a.client_id}/visits", headers=DESK)).json()[
        "visits"
    ][0]
    clinic.clock.at += timedelta(minutes=5)
    cancelled = await clinic.http.post(
        f"/v1/visits/{first['visit_id']}/cancel", json={"by": "client"}, headers=DESK
    )
    assert cancelled.status_code == 202
    offer_b = await offered_to(clinic, b.plan_id)
    page = f"/v1/waitlist-offers/{offer_b}/manage"
    params = {"sig": offer_sig(clinic, offer_b), "lang": "es"}

    opened = await clinic.http.get(page, params=params)
    assert opened.status_code == 200, opened.text
    assert list(Forms(opened.text).forms) == ["manage/accept", "manage/decline"]
    assert "Reservada para usted hasta el" in opened.text
    # the link of a message sent before the page existed opens it too, and acts on nothing
    older = await clinic.http.get(f"/v1/waitlist-offers/{offer_b}/accept", params=params)
    assert older.status_code == 200 and older.text == opened.text
    assert (await waitlist(clinic))[b.plan_id]["open_offer"] == offer_b
    declined = await clinic.http.post(f"{page}/decline", params=params, headers=FORM)
    assert declined.status_code == 200 and "lista de espera" in declined.text
    closed = await clinic.http.post(f"{page}/accept", params=params, headers=FORM)
    assert closed.status_code == 409 and "Usted rechazó esta hora." in closed.text

    offer_c = await offered_to(clinic, c.plan_id)
    page_c = f"/v1/waitlist-offers/{offer_c}/manage"
    params_c = {"sig": offer_sig(clinic, offer_c), "lang": "en"}
    accepted = await clinic.http.post(f"{page_c}/accept", params=params_c, headers=FORM)
    assert accepted.status_code == 200, accepted.text
    assert "Booked: your visit on" in accepted.text
    booked_c = await topics.wait_for(lambda: topics.for_client("visit.booked", c.client_id))
    assert at(booked_c[0]["data"]["start"]) == at(first["start"])  # the slot A's cancel freed
    shown = await clinic.http.get(page_c, params=params_c)
    assert "You accepted this time; it is booked." in shown.text and not Forms(shown.text).forms
