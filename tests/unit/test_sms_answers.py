"""What we text back, and what a client's text publishes: the carriers' required parts
in each language, the visit by its local time, and never the client's words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.notifier import sms_answers
from services.notifier.messages import SMS_MAX_CHARS, Clinic, sms_text
from services.notifier.sms_replies import NextVisit, SmsReply
from shared.local_time import when_local

CLINIC = Clinic(
    chain_name="Northwest Neuromuscular Therapy",
    location_name="Beaverton",
    address="12500 SW Broadway St, Beaverton, OR 97005",
    phone="+15035550100",
    timezone="America/Los_Angeles",
)
NO_PHONE = Clinic(**{**CLINIC.__dict__, "phone": None})
VISIT_URL = "https://clinic.example/v1/visits/v-1/manage?sig=abc"
START = datetime(2027, 3, 16, 17, tzinfo=UTC)  # Tuesday 10:00 PDT


def every_answer(clinic: Clinic, language: str) -> list[str]:
    return [
        sms_answers.started(clinic, language),
        sms_answers.helped(clinic, language),
        sms_answers.confirmed(clinic, language, when=when_local(START, clinic.timezone, language)),
        sms_answers.nothing_to_confirm(clinic, language),
        sms_answers.noted(clinic, language, score=4),
        sms_answers.forwarded(clinic, language, visit_url=VISIT_URL),
        sms_answers.forwarded(clinic, language, visit_url=None),
    ]


@pytest.mark.parametrize("language", ["en", "es"])
def test_help_names_the_program_the_clinics_phone_and_how_to_stop(language: str) -> None:
    text = sms_answers.helped(CLINIC, language)
    assert "Northwest Neuromuscular Therapy" in text and "Beaverton" in text
    assert "+15035550100" in text
    assert "STOP" in text  # the word the provider's blocking honours, in every language


def test_help_and_start_speak_spanish_to_a_spanish_client() -> None:
    helped = sms_answers.helped(CLINIC, "es")
    assert "llame al +15035550100" in helped and "Responda STOP" in helped
    assert "Help" not in helped and "Reply" not in helped
    started = sms_answers.started(CLINIC, "es-MX")
    assert "vuelven a estar activos" in started and "STOP" in started
    assert "Reply" not in started


def test_start_says_texts_are_on_again_and_how_to_stop() -> None:
    text = sms_answers.started(CLINIC, "en")
    assert "on again" in text and "STOP" in text and "HELP" in text


@pytest.mark.parametrize(
    ("language", "when"),
    [("en", "Tuesday, March 16 at 10:00 AM PDT"), ("es", "martes 16 de marzo a las 10:00 PDT")],
)
def test_a_confirmation_names_the_visit_by_its_local_time_and_place(
    language: str, when: str
) -> None:
    text = sms_answers.confirmed(
        CLINIC, language, when=when_local(START, CLINIC.timezone, language)
    )
    assert when in text and "Beaverton" in text


def test_nothing_to_confirm_says_so_with_the_clinics_number() -> None:
    assert "no upcoming visit" in sms_answers.nothing_to_confirm(CLINIC, "en")
    es = sms_answers.nothing_to_confirm(CLINIC, "es")
    assert "ninguna cita" in es and "+15035550100" in es


@pytest.mark.parametrize("language", ["en", "es"])
def test_any_other_text_is_answered_with_the_number_and_the_visit_link(language: str) -> None:
    text = sms_answers.forwarded(CLINIC, language, visit_url=VISIT_URL)
    assert "+15035550100" in text and text.endswith(VISIT_URL)
    without = sms_answers.forwarded(CLINIC, language, visit_url=None)
    assert "http" not in without and "+15035550100" in without


@pytest.mark.parametrize("language", ["en", "es"])
def test_a_location_without_a_phone_leaves_the_call_out(language: str) -> None:
    for text in every_answer(NO_PHONE, language):
        assert "None" not in text and "+1" not in text
        assert "  " not in text


@pytest.mark.parametrize("language", ["en", "es", "fr"])
def test_every_answer_is_one_plain_sms(language: str) -> None:
    for text in every_answer(CLINIC, language):
        assert text == sms_text(text)  # GSM-7 where a spelling exists, one paragraph
        assert len(text) <= SMS_MAX_CHARS


def test_an_unknown_language_is_answered_in_english() -> None:
    assert sms_answers.helped(CLINIC, "fr") == sms_answers.helped(CLINIC, "en")


def reply(**fields: object) -> SmsReply:
    base: dict[str, object] = {
        "reply_id": "SM" + "a" * 32,
        "client_id": "c-1",
        "location_id": "beaverton",
        "intent": "other",
        "received_at": START,
    }
    return SmsReply.model_validate({"asked": fields.get("intent", "other"), **base, **fields})


def test_a_confirmation_publishes_the_visit_it_confirms_at_the_visits_location() -> None:
    visit = NextVisit(visit_id="v-9", location_id="brooklyn", start=START)
    fact = reply(intent="confirm", next_visit=visit).fact()
    assert (fact.intent, fact.visit_id, fact.location_id) == ("confirm", "v-9", "brooklyn")
    assert fact.channel == "sms" and fact.received_at == START


def test_any_other_text_publishes_no_visit_and_never_the_words() -> None:
    words = "my zyglotic shoulder is worse"
    visit = NextVisit(visit_id="v-9", location_id="beaverton", start=START)
    kept = reply(text=words, next_visit=visit)
    fact = kept.fact()
    assert fact.visit_id is None and fact.intent == "other"
    assert "zyglotic" not in fact.model_dump_json()
    assert kept.for_desk and kept.status == "unanswered"


def test_an_answer_is_who_and_when() -> None:
    done = reply(text="hi").answered(
        at=START, by="Beaverton front desk", by_key="k1", note="called"
    )
    assert done.status == "answered"
    assert (done.answered_by, done.answered_by_key, done.note) == (
        "Beaverton front desk",
        "k1",
        "called",
    )
