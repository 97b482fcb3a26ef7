"""The client's visit and offer pages (services/scheduler/pages.py), their texts in
English and Spanish (page_texts.py) and the times a visit page proposes for a move
(proposals.py)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import get_args

import pytest

from services.scheduler import operations
from services.scheduler.backfill import OfferState
from services.scheduler.booking import interval_of
from services.scheduler.confirmation import ShownStatus
from services.scheduler.directory import plain
from services.scheduler.operations import RefusalReason
from services.scheduler.page_texts import ENGLISH, SPANISH, TEXTS, PageTexts, texts_for
from services.scheduler.pages import (
    POLICY,
    STYLE,
    OfferFacts,
    Place,
    VisitFacts,
    offer_page,
    query,
    result_page,
    visit_page,
)
from services.scheduler.proposals import proposed_starts
from services.scheduler.store import VisitStatus
from shared.chain import Policy
from shared.events.plans import SchedulingNeeds
from shared.events.visits import VisitBooked
from tests.unit.test_booking import (
    ALL_WEEK,
    book,
    make_location,
    make_phase,
    make_plan,
    make_therapist,
)

START = datetime(2027, 3, 16, 17, tzinfo=UTC)  # Tuesday 10:00 PDT
PLACE = Place(
    chain_name="Northwest Neuromuscular Therapy",
    location_name="Beaverton",
    address="12345 SW Canyon Rd, Beaverton, OR 97005",
    phone="+15035550100",
    timezone="America/Los_Angeles",
)
BOOKED = VisitFacts(
    visit_id="v-1",
    place=PLACE,
    start=START,
    status="booked",
    started=False,
    late_cancel=False,
    late_window=timedelta(hours=24),
    proposals=[START + timedelta(days=1, hours=-1), START + timedelta(days=2)],
)


class Page(HTMLParser):
    """What a browser would find on a page: forms with their buttons, scripts, text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []
        self.scripts = 0
        self.words: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"method": found.get("method"), "action": found.get("action"), "buttons": []}
            )
        elif tag == "button":
            buttons = self.forms[-1]["buttons"]
            assert isinstance(buttons, list)
            buttons.append(found.get("value"))
        elif tag == "script" or any(name.startswith("on") for name in found):
            self.scripts += 1

    def handle_data(self, data: str) -> None:
        self.words.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.words).split())

    def actions(self) -> list[str]:
        return [str(form["action"]).split("?")[0] for form in self.forms]


def every_text(texts: PageTexts) -> set[str]:
    found: set[str] = set()
    for field in fields(PageTexts):
        value = getattr(texts, field.name)
        found |= {value} if isinstance(value, str) else set(value.values())
    return found


def render(facts: VisitFacts, lang: str = "en", *, carried: str = "sig=s&lang=en") -> Page:
    return Page(visit_page(facts, texts=TEXTS[lang], lang=lang, carried=carried))


# --- texts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "language"),
    [("es", "es"), ("es-MX", "es"), ("en", "en"), ("fr", "en"), ("", "en"), (None, "en"),
     ("<script>", "en")],
)  # fmt: skip
def test_the_lang_parameter_picks_english_or_spanish(lang: str | None, language: str) -> None:
    assert texts_for(lang) == (language, TEXTS[language])


@pytest.mark.parametrize("texts", [ENGLISH, SPANISH], ids=["en", "es"])
def test_every_language_words_every_status_refusal_and_offer_state(texts: PageTexts) -> None:
    shown = set(get_args(ShownStatus)) - {"offered", "released"}  # never a client's visit
    assert set(texts.statuses) == shown
    reasons = {*get_args(RefusalReason), *get_args(VisitStatus), "calendar_changed", "other"}
    for reason in reasons - {"booked", "offered", "released"}:
        assert texts.refusal(reason) != "", reason
    assert set(texts.offer_states) == set(get_args(OfferState)) - {"open"}
    assert texts.refusal("no such reason") == texts.refusals["other"]


def test_spanish_says_everything_in_spanish() -> None:
    for field in fields(PageTexts):
        english, spanish = getattr(ENGLISH, field.name), getattr(SPANISH, field.name)
        if isinstance(english, str):
            assert english != spanish, field.name
        else:
            assert all(english[key] != spanish[key] for key in english), field.name


# --- the visit page -----------------------------------------------------------------------


def test_a_booked_visit_in_spanish_with_its_local_time_and_three_forms() -> None:
    page = render(BOOKED, "es", carried=query("123.mac", "es"))
    assert "martes 16 de marzo a las 10:00 PDT" in page.text
    assert "Beaverton, 12345 SW Canyon Rd" in page.text
    assert "Reservada" in page.text and "¿Vendrá?" in page.text
    assert page.actions() == ["manage/confirm", "manage/cancel", "manage/reschedule"]
    assert all(form["method"] == "post" for form in page.forms)
    assert all(str(form["action"]).endswith("?sig=123.mac&lang=es") for form in page.forms)
    # each proposed time is a button posting its start
    assert page.forms[2]["buttons"] == [s.isoformat() for s in BOOKED.proposals]
    assert "miércoles 17 de marzo a las 9:00 PDT" in page.text
    assert page.scripts == 0
    assert not every_text(ENGLISH) & {chunk.strip() for chunk in page.words}


def test_the_cancel_form_says_before_it_is_pressed_whether_it_counts_as_late() -> None:
    on_time = render(BOOKED)
    assert "Cancelling before Monday, March 15 at 10:00 AM PDT does not count as late" in (
        on_time.text
    )
    late = render(replace(BOOKED, late_cancel=True), "es")
    assert "cuenta como cancelación tardía: faltan menos de 24 horas" in late.text
    assert "manage/cancel" in late.actions()


@pytest.mark.parametrize(
    ("status", "started", "says"),
    [
        ("cancelled", False, "This visit was cancelled."),
        ("completed", True, "This visit has taken place."),
        ("no_show", True, "This visit has taken place."),
        ("booked", True, "This visit has started"),
    ],
)
def test_a_visit_that_cannot_change_shows_no_buttons(
    status: ShownStatus, started: bool, says: str
) -> None:
    page = render(replace(BOOKED, status=status, started=started))
    assert page.forms == [] and says in page.text


def test_a_confirmed_visit_is_not_asked_again_and_a_visit_with_no_free_time_says_so() -> None:
    page = render(replace(BOOKED, status="confirmed", proposals=[]))
    assert "Confirmed" in page.text and "You have confirmed this visit" in page.text
    assert page.actions() == ["manage/cancel"]
    assert "No other time is free for this visit" in page.text


def test_everything_printed_is_escaped() -> None:
    hostile = replace(
        PLACE, chain_name='<script>alert("x")</script>', address='1 "Main" <b>St</b> & Co'
    )
    carried = query('a"><script>x</script>&b', "en")
    text = visit_page(replace(BOOKED, place=hostile), texts=ENGLISH, lang="en", carried=carried)
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text and "&amp; Co" in text
    page = Page(text)
    assert page.scripts == 0
    assert all("<" not in str(form["action"]) for form in page.forms)


def test_the_pages_own_style_is_the_one_the_policy_allows() -> None:
    text = visit_page(BOOKED, texts=ENGLISH, lang="en", carried="lang=en")
    (style,) = re.findall(r"<style>(.*?)</style>", text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert style == STYLE and f"'sha256-{digest}'" in POLICY
    assert "script-src" not in POLICY and "default-src 'none'" in POLICY


def test_a_result_page_links_back_to_the_visit() -> None:
    text = result_page(
        title=SPANISH.done_title,
        lines=[SPANISH.done_confirmed.format(when="martes"), ""],
        place=PLACE,
        texts=SPANISH,
        lang="es",
        back="../manage?sig=1.a&lang=es",
    )
    page = Page(text)
    assert "Gracias. Su cita del martes está confirmada." in page.text
    assert 'href="../manage?sig=1.a&amp;lang=es"' in text and "Volver a su cita" in page.text
    assert page.forms == [] and '<html lang="es">' in text


# --- the offer page -----------------------------------------------------------------------


def offer(state: str) -> OfferFacts:
    return OfferFacts(
        offer_id="o-1",
        place=PLACE,
        start=START,
        hold_until=START - timedelta(days=2, hours=2),
        state=state,
    )


def test_an_open_offer_has_accept_and_decline_and_says_until_when_it_is_held() -> None:
    page = Page(offer_page(offer("open"), texts=SPANISH, lang="es", carried="sig=x&lang=es"))
    assert page.actions() == ["manage/accept", "manage/decline"]
    assert "Reservada para usted hasta el domingo 14 de marzo a las 8:00 PDT" in page.text
    assert "martes 16 de marzo a las 10:00 PDT" in page.text


@pytest.mark.parametrize("state", ["accepted", "declined", "lapsed", "withdrawn"])
def test_a_closed_offer_says_what_became_of_it(state: str) -> None:
    page = Page(offer_page(offer(state), texts=ENGLISH, lang="en", carried="lang=en"))
    assert page.forms == [] and ENGLISH.offer_states[state] in page.text


# --- the times proposed for a move --------------------------------------------------------

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)  # Monday 04:00 in Los Angeles
LOCATION = make_location(hours=ALL_WEEK)
ANA = make_therapist("t-ana")


def three_visits(interval_days: int) -> list[VisitBooked]:
    plan = make_plan(phases=[make_phase(sessions=3, interval_days=interval_days)])
    booked = book(plan, location=LOCATION, therapists=[ANA]).booked
    assert [v.sequence for v in booked] == [1, 2, 3]
    return booked


def moves(visits: list[VisitBooked], moving: VisitBooked, start: datetime | None) -> object:
    """What the proposals (``start`` None) or a move to ``start`` make of the calendar."""
    common = {
        "plan_visits": visits,
        "staffing": plain(LOCATION, [(ANA, LOCATION.hours)]),
        "needs": SchedulingNeeds(),
        "policy": Policy(),
        "now": NOW,
    }
    held = [interval_of(v) for v in visits]
    if start is None:
        return proposed_starts(moving, held=held, **common)  # type: ignore[arg-type]
    return operations.reschedule(moving, start=start, existing=held, **common)  # type: ignore[arg-type]


def test_three_times_one_a_day_each_a_move_the_rules_grant() -> None:
    visits = three_visits(interval_days=7)
    first, middle, last = visits
    found = moves(visits, middle, None)
    assert isinstance(found, list) and len(found) == 3 and middle.start not in found
    days = [start.astimezone(LOCATION.zone).date() for start in found]
    assert days == sorted(set(days))  # one a day, earliest first
    gap, length = Policy().min_gap_same_area, middle.end - middle.start
    for start in found:
        assert first.end + gap <= start and start + length + gap <= last.start
        assert not isinstance(moves(visits, middle, start), operations.Refusal)


def test_no_time_is_proposed_where_the_soreness_gap_leaves_none() -> None:
    first, middle, last = three_visits(interval_days=7)
    hour, gap = timedelta(hours=1), Policy().min_gap_same_area
    # the neighbours end and start exactly the soreness gap away: the middle visit
    # has no other place
    first = first.model_copy(update={"start": middle.start - gap - hour, "end": middle.start - gap})
    last = last.model_copy(update={"start": middle.end + gap, "end": middle.end + gap + hour})
    assert moves([first, middle, last], middle, None) == []
