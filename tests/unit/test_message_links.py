"""Where the links in messages point (services/notifier/compose.py ``Links``): by
default the scheduler's visit and offer pages, in the client's language, signed for
the one visit or offer they open; a link template that still names ``{action}`` (or
has no ``{lang}``) keeps working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from services.notifier import messages
from services.notifier.compose import Links, compose
from services.notifier.delivery import Route
from shared import links
from shared.chain import load_chain_config
from shared.settings import NotifierSettings
from tests.conftest import DEMO_CHAIN

SECRET = "a-link-secret-for-these-tests-only"
VISIT_START = datetime(2027, 3, 16, 17, tzinfo=UTC)
EXPIRES = VISIT_START + timedelta(days=30)


def default_links() -> Links:
    settings = NotifierSettings(CLINICFLOW_CHAIN_CONFIG=str(DEMO_CHAIN), CLINICFLOW_ENV="test")
    return Links(
        secret=SECRET,
        confirm=settings.confirm_url_template,
        offer=settings.offer_url_template,
        checkin=settings.checkin_url_template,
        calendar=settings.calendar_url_template,
    )


def test_a_visit_link_opens_the_visits_page_in_the_clients_language() -> None:
    url = default_links().speaking("es").visit("v-1", expires=EXPIRES)
    parts = urlsplit(url)
    assert parts.path == "/v1/visits/v-1/manage"
    query = parse_qs(parts.query)
    assert query["lang"] == ["es"]
    assert links.verify(SECRET, query["sig"][0], "visit", "v-1", now=VISIT_START)
    assert parse_qs(urlsplit(default_links().visit("v-1", expires=EXPIRES)).query)["lang"] == ["en"]


def test_an_offer_link_opens_the_offers_page_and_an_action_template_still_works() -> None:
    urls = default_links().speaking("es")
    accept = urls.offer_action("o-1", "accept", expires=EXPIRES)
    assert urlsplit(accept).path == "/v1/waitlist-offers/o-1/manage"
    assert accept == urls.offer_action("o-1", "decline", expires=EXPIRES)  # one page, both buttons
    sig = parse_qs(urlsplit(accept).query)["sig"][0]
    assert links.verify(SECRET, sig, "offer", "o-1", now=VISIT_START)

    older = Links(
        secret=SECRET,
        confirm="https://c.example/v/{visit_id}.ics?sig={sig}",
        offer="https://c.example/o/{offer_id}/{action}?sig={sig}",
        checkin="https://c.example/c/{notification_id}?sig={sig}",
    ).speaking("es")
    assert older.offer_action("o-1", "decline", expires=EXPIRES).startswith(
        "https://c.example/o/o-1/decline?sig="
    )
    assert older.visit("v-1", expires=EXPIRES).startswith("https://c.example/v/v-1.ics?sig=")


def test_a_message_carries_the_link_in_its_clients_language() -> None:
    record = {
        "kind": "reminder",
        "location_id": "beaverton",
        "visit_id": "v-9",
        "notification_id": "n-9",
        "client_id": "c-9",
        "context": {"visit_start": VISIT_START.isoformat()},
    }
    for language, lang in (("es-MX", "es"), ("en", "en"), ("de", "en")):
        message = compose(
            record,
            way=Route(channel="email", to="c@example.com", template="email"),
            language=language,
            chain=load_chain_config(DEMO_CHAIN),
            plan=None,
            urls=default_links(),
            templates=messages.Templates(),
            sent_at=VISIT_START - timedelta(days=2),
        )
        assert "/v1/visits/v-9/manage?sig=" in message.body
        assert f"&lang={lang}" in message.body
