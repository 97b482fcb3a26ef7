"""The check-in pages in the client's language: the visit on the location's clock and
its place, a button per score posting a plain form (no script), every value escaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.notifier.checkin_pages import WORDS, answered_page, question_page, thanks_page
from services.notifier.messages import LANGUAGES, Clinic

CLINIC = Clinic(
    chain_name="Northwest <Neuromuscular> Therapy",
    location_name="Beaverton",
    address="12500 SW Broadway St",
    phone="+15035550100",
    timezone="America/Los_Angeles",
)
VISIT = datetime(2027, 3, 16, 17, 0, tzinfo=UTC)  # 10:00 PDT
ACTION = "/v1/checkins/n-1/reply?sig=a&b"


def test_every_message_language_has_the_pages_words() -> None:
    assert set(WORDS) == set(LANGUAGES)


@pytest.mark.parametrize(
    ("language", "when", "asks", "english"),
    [
        ("en", "Tuesday, March 16 at 10:00 AM PDT", "How is your pain today", None),
        ("es", "martes 16 de marzo a las 10:00 PDT", "¿Cuánto dolor siente hoy", "your pain"),
        ("es-MX", "martes 16 de marzo a las 10:00 PDT", "¿Cuánto dolor siente hoy", "your pain"),
    ],
)
def test_the_question_in_the_clients_language(
    language: str, when: str, asks: str, english: str | None
) -> None:
    page = question_page(language, clinic=CLINIC, visit_start=VISIT, action=ACTION)

    assert f'<html lang="{language[:2]}">' in page
    assert asks in page and when in page and "Beaverton, 12500 SW Broadway St" in page
    assert re.findall(r'<button name="pain" value="(\d+)" type="submit"', page) == [
        str(n) for n in range(11)
    ]
    assert '<form method="post" action="/v1/checkins/n-1/reply?sig=a&amp;b">' in page
    assert "<script" not in page.lower() and "onclick" not in page.lower()
    assert "Northwest &lt;Neuromuscular&gt; Therapy" in page and "<Neuromuscular>" not in page
    if english is not None:
        assert english not in page.lower()


def test_the_answers_to_pressing_a_button() -> None:
    assert "Thank you. We noted 3/10" in thanks_page("en", clinic=CLINIC, pain=3)
    assert "Gracias. Hemos anotado 3/10" in thanks_page("es", clinic=CLINIC, pain=3)
    assert "answered already (5/10)" in answered_page("en", clinic=CLINIC, pain=5)
    assert "Ya recibimos una respuesta a esta pregunta (5/10)" in answered_page(
        "es", clinic=CLINIC, pain=5
    )
    assert "Llámenos al +15035550100" in thanks_page("es", clinic=CLINIC, pain=3)
    no_phone = Clinic(**{**CLINIC.__dict__, "phone": None})
    assert "Llámenos" not in thanks_page("es", clinic=no_phone, pain=3)
