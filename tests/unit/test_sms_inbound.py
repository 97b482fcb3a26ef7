"""Replies clients text back: Twilio's request signature, the form, and the keywords."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.notifier.sms_inbound import (
    Command,
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
        # opt-in
        ("START", Command("start")),
        ("yes", Command("start")),
        ("Unstop", Command("start")),
        ("Sí", Command("start")),
        ("si", Command("start")),
        ("comenzar", Command("start")),
        # help
        ("HELP", Command("help")),
        ("info?", Command("help")),
        ("¿Ayuda?", Command("help")),
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
