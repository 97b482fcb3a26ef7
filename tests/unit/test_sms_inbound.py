"""Replies clients text back: Twilio's request signature, the form, and the keywords."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.notifier.sms_inbound import (
    CONFIRM_WORDS,
    HELP_WORDS,
    START_WORDS,
    STOP_WORDS,
    Command,
    CommandKind,
    InboundSms,
    classify,
    twilio_signature,
    valid_twilio_signature,
)

# Twilio's documented example (https://www.twilio.com/docs/usage/security)
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TOKEN = "12345"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
# the value the algorithm gives and today's page shows; the brief's GvWf1cFY/... belongs
# to the older version of the page, whose Caller and From were +14158675310
DOCUMENTED = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_signature_matches_twilios_documented_example() -> None:
    assert twilio_signature(TOKEN, URL, PARAMS) == DOCUMENTED
    assert valid_twilio_signature(TOKEN, URL, PARAMS, DOCUMENTED)


def test_signature_matches_the_older_documented_example() -> None:
    older = {**PARAMS, "Caller": "+14158675310", "From": "+14158675310"}
    assert twilio_signature(TOKEN, URL, older) == "GvWf1cFY/Q7PnoempGyD5oXAezc="


def test_parameter_order_does_not_matter_and_pairs_work_too() -> None:
    reversed_pairs = list(reversed(PARAMS.items()))
    assert twilio_signature(TOKEN, URL, reversed_pairs) == DOCUMENTED


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        ("54321", URL, PARAMS, DOCUMENTED),  # another account's token
        (TOKEN, URL.replace("foo=1", "foo=2"), PARAMS, DOCUMENTED),  # another URL
        (TOKEN, URL, {**PARAMS, "Digits": "1235"}, DOCUMENTED),  # a changed value
        (TOKEN, URL, {**PARAMS, "Body": "STOP"}, DOCUMENTED),  # an added field
        (TOKEN, URL, {k: v for k, v in PARAMS.items() if k != "To"}, DOCUMENTED),  # a removed one
        (TOKEN, URL, PARAMS, DOCUMENTED.lower()),
        (TOKEN, URL, PARAMS, ""),
    ],
)
def test_tampering_fails(token: str, url: str, params: dict[str, str], signature: str) -> None:
    assert not valid_twilio_signature(token, url, params, signature)


def test_a_default_port_added_or_removed_by_a_proxy_still_validates() -> None:
    with_port = URL.replace("mycompany.com/", "mycompany.com:443/")
    assert valid_twilio_signature(TOKEN, with_port, PARAMS, DOCUMENTED)
    signed_with_port = twilio_signature(TOKEN, with_port, PARAMS)
    assert valid_twilio_signature(TOKEN, URL, PARAMS, signed_with_port)
    other_port = URL.replace("mycompany.com/", "mycompany.com:8443/")
    assert not valid_twilio_signature(TOKEN, other_port, PARAMS, DOCUMENTED)


def test_inbound_form_is_read_and_other_fields_ignored() -> None:
    sms = InboundSms.from_form(
        {
            "From": "+15035550101",
            "To": "+15035550199",
            "Body": " Stop ",
            "MessageSid": "SM" + "a" * 32,
            "AccountSid": "AC" + "b" * 32,
            "NumMedia": "0",
        }
    )
    assert (sms.sender, sms.recipient, sms.body) == ("+15035550101", "+15035550199", " Stop ")
    assert sms.message_sid == "SM" + "a" * 32
    assert classify(sms.body) == Command("stop")


@pytest.mark.parametrize("sid", ["", "SM/../x", "SM 1", "S" * 65])
def test_inbound_form_with_a_message_id_no_provider_gives_is_refused(sid: str) -> None:
    form = {"From": "+15035550101", "To": "+15035550199", "Body": "hi", "MessageSid": sid}
    with pytest.raises(ValidationError) as raised:
        InboundSms.from_form(form)
    assert raised.value.errors()[0]["loc"] == ("MessageSid",)


@pytest.mark.parametrize("missing", ["From", "To", "MessageSid"])
def test_inbound_form_without_a_required_field_is_refused(missing: str) -> None:
    form = {"From": "+15035550101", "To": "+15035550199", "Body": "hi", "MessageSid": "SM1"}
    del form[missing]
    with pytest.raises(ValidationError):
        InboundSms.from_form(form)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # opt-out, English (Twilio's list) and Spanish, any case, spaces and punctuation
        ("STOP", Command("stop")),
        ("stop", Command("stop")),
        ("  Stop.  ", Command("stop")),
        ("StopAll", Command("stop")),
        ("unsubscribe", Command("stop")),
        ("CANCEL", Command("stop")),
        ("end!", Command("stop")),
        ("Quit", Command("stop")),
        ("PARAR", Command("stop")),
        ("¡Alto!", Command("stop")),
        ("ÁLTO", Command("stop")),
        ("revoke", Command("stop")),
        ("OptOut", Command("stop")),
        ("Cancel.", Command("stop")),
        ("cancel", Command("stop")),
        # opt-in
        ("START", Command("start")),
        ("yes", Command("start")),
        ("Unstop", Command("start")),
        ("Sí", Command("start")),
        ("si", Command("start")),
        ("comenzar", Command("start")),
        ("Iniciar", Command("start")),
        ("YES!", Command("start")),  # the carriers' opt-in word, not a confirmation
        # help
        ("HELP", Command("help")),
        ("info?", Command("help")),
        ("¿Ayuda?", Command("help")),
        ("AYUDA", Command("help")),
        ("INFO", Command("help")),
        # confirm the next visit
        ("Y", Command("confirm")),
        ("y", Command("confirm")),
        (" y. ", Command("confirm")),
        ("C", Command("confirm")),
        ("c!", Command("confirm")),
        ("Confirm", Command("confirm")),
        ("CONFIRM.", Command("confirm")),
        ("confirmar", Command("confirm")),
        ("¡Confirmar!", Command("confirm")),
        ("CONFÍRMAR", Command("confirm")),
        # pain scores 0-10
        ("7", Command("score", 7)),
        (" 3 ", Command("score", 3)),
        ("0", Command("score", 0)),
        ("10", Command("score", 10)),
        ("7/10", Command("score", 7)),
        ("7 / 10", Command("score", 7)),
        ("pain 4", Command("score", 4)),
        ("Pain: 4/10", Command("score", 4)),
        ("dolor 5", Command("score", 5)),
        ("4.", Command("score", 4)),
        # everything else
        ("11", Command("other")),
        ("-1", Command("other")),
        ("100", Command("other")),
        ("3.5", Command("other")),
        ("7/5", Command("other")),
        ("please stop", Command("other")),
        ("STOP PLEASE", Command("other")),
        ("please cancel", Command("other")),
        ("cancel my visit", Command("other")),
        ("opt out", Command("other")),  # Twilio's OPTOUT is one word
        ("please confirm", Command("other")),
        ("y c", Command("other")),
        ("yy", Command("other")),
        ("confirmed", Command("other")),
        ("help me", Command("other")),
        ("stop texting me", Command("other")),
        ("stopp", Command("other")),
        ("pain", Command("other")),
        ("thanks, see you Tuesday", Command("other")),
        ("", Command("other")),
        ("   ", Command("other")),
    ],
)
def test_classify(body: str, expected: Command) -> None:
    assert classify(body) == expected


@pytest.mark.parametrize(
    ("words", "kind"),
    [
        (STOP_WORDS, "stop"),
        (START_WORDS, "start"),
        (HELP_WORDS, "help"),
        (CONFIRM_WORDS, "confirm"),
    ],
)
def test_every_keyword_counts_in_any_case_between_punctuation_and_alone_only(
    words: frozenset[str], kind: CommandKind
) -> None:
    for word in words:
        for written in (word, word.upper(), word.title(), f"  {word.upper()}! ", f"¿{word}?"):
            assert classify(written) == Command(kind), written
        assert classify(f"please {word}") == Command("other")
        assert classify(f"{word} now") == Command("other")


def test_no_word_means_two_things() -> None:
    sets = [STOP_WORDS, START_WORDS, HELP_WORDS, CONFIRM_WORDS]
    assert sum(len(s) for s in sets) == len(frozenset().union(*sets))


def test_the_carriers_opt_out_words_all_stop() -> None:
    # Twilio's default list, with REVOKE and OPTOUT added for the FCC's rule (May 2025)
    twilio = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
    assert {w for w in twilio if classify(w) == Command("stop")} == twilio
    assert {w for w in ("START", "YES", "UNSTOP") if classify(w) == Command("start")} == {
        "START",
        "YES",
        "UNSTOP",
    }
