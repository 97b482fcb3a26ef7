"""Which channel carries a message, when quiet hours end, and the retry backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.delivery import (
    Backoff,
    Consent,
    Contact,
    Route,
    Suppressed,
    after_quiet_hours,
    contact_from,
    next_attempt,
    route,
    still_stopped,
    texted_start,
    texted_stop,
    with_preferences,
)
from shared.events.intake import ClientRecord, ContactConsent

LA = ZoneInfo("America/Los_Angeles")
EVERYTHING = {"email", "sms", "webhook", "console"}


def contact(**changes: object) -> Contact:
    base = Contact(
        client_id="c-1",
        location_id="beaverton",
        email="jordan@example.com",
        phone="+15035550111",
        consent=Consent(email=True, sms=True),
    )
    return base.model_copy(update=changes)


def test_email_first_then_sms_as_consented() -> None:
    assert route(contact(), configured={"email", "sms"}, production=True) == Route(
        "email", "jordan@example.com", "email"
    )
    sms_only = contact(consent=Consent(sms=True))
    assert route(sms_only, configured={"email", "sms"}, production=True) == Route(
        "sms", "+15035550111", "sms"
    )
    no_address = contact(email=None)
    assert route(no_address, configured={"email", "sms"}, production=True) == Route(
        "sms", "+15035550111", "sms"
    )


def test_nothing_is_sent_without_consent_or_after_stop() -> None:
    none = route(contact(consent=Consent()), configured=EVERYTHING, production=False)
    assert isinstance(none, Suppressed) and none.reason == "no_consent"
    stopped = route(
        contact(consent=Consent(sms=True), sms_stopped=True),
        configured=EVERYTHING,
        production=False,
    )
    assert isinstance(stopped, Suppressed) and stopped.reason == "sms_stopped"
    # STOP only stops SMS: e-mail the client allowed still goes
    mixed = route(contact(sms_stopped=True), configured={"email", "sms"}, production=True)
    assert mixed == Route("email", "jordan@example.com", "email")
    missing = route(
        contact(consent=Consent(email=True), email=None), configured=EVERYTHING, production=True
    )
    assert isinstance(missing, Suppressed) and missing.reason == "no_contact_data"
    unknown = route(None, configured=EVERYTHING, production=True)
    assert isinstance(unknown, Suppressed) and unknown.reason == "no_contact_data"


def test_the_console_stands_in_outside_production_only() -> None:
    assert route(contact(), configured={"console"}, production=False) == Route(
        "console", "jordan@example.com", "email"
    )
    refused = route(contact(), configured={"console"}, production=True)
    assert isinstance(refused, Suppressed) and refused.reason == "no_channel"
    assert route(contact(), configured={"webhook", "console"}, production=True) == Route(
        "webhook", "c-1", "email"
    )


def test_a_stop_stands_until_a_new_opt_in() -> None:
    stopped = contact(consent=Consent(sms=True), sms_stopped=True)
    assert still_stopped(stopped, sms_consent=True) is True  # the same consent again
    assert still_stopped(stopped, sms_consent=False) is True
    was_out = contact(consent=Consent(sms=False), sms_stopped=True)
    assert still_stopped(was_out, sms_consent=True) is False  # a new opt-in
    assert still_stopped(None, sms_consent=True) is False


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2027, 3, 9, 22, 30), datetime(2027, 3, 10, 8, 0)),  # evening: next morning
        (datetime(2027, 3, 10, 6, 0), datetime(2027, 3, 10, 8, 0)),  # early: this morning
        (datetime(2027, 3, 10, 12, 0), datetime(2027, 3, 10, 12, 0)),  # daytime: as is
        # the night of the spring change: 08:00 on the new clock (PDT)
        (datetime(2027, 3, 13, 23, 0), datetime(2027, 3, 14, 8, 0)),
    ],
)
def test_quiet_hours_move_a_message_to_their_end_on_the_wall_clock(
    local: datetime, expected: datetime
) -> None:
    instant = local.replace(tzinfo=LA).astimezone(UTC)
    moved = after_quiet_hours(instant, quiet_hours="21:00-08:00", zone=LA)
    assert moved.astimezone(LA).replace(tzinfo=None) == expected


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap_then_stop() -> None:
    policy = Backoff(base=timedelta(seconds=5), cap=timedelta(seconds=60), attempts=5)
    now = datetime(2027, 3, 1, tzinfo=UTC)
    top = random.Random()
    top.random = lambda: 1.0  # type: ignore[method-assign]
    ceilings = [next_attempt(n, now=now, policy=policy, rand=top) for n in range(1, 5)]
    assert [c - now for c in ceilings if c] == [
        timedelta(seconds=5),
        timedelta(seconds=10),
        timedelta(seconds=20),
        timedelta(seconds=40),
    ]
    assert next_attempt(5, now=now, policy=policy) is None  # all attempts made


@given(attempt=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_a_retry_is_always_later_and_never_past_the_cap(attempt: int, seed: int) -> None:
    policy = Backoff(base=timedelta(seconds=2), cap=timedelta(minutes=5), attempts=40)
    now = datetime(2027, 3, 1, tzinfo=UTC)
    when = next_attempt(attempt, now=now, policy=policy, rand=random.Random(seed))
    assert when is not None and now < when <= now + policy.cap


def test_stop_start_and_the_front_desk_change_consent_as_the_client_said() -> None:
    stopped = texted_stop(contact())
    assert stopped.sms_stopped and stopped.consent.email  # e-mail untouched
    sms_only = texted_stop(contact(consent=Consent(sms=True)))
    assert route(sms_only, configured={"sms"}, production=True) == Suppressed(
        "sms_stopped", "the client texted STOP"
    )
    restarted = texted_start(contact(consent=Consent(), sms_stopped=True))
    assert not restarted.sms_stopped and restarted.consent.sms
    kept_off = with_preferences(stopped, email=True, sms=False, quiet_hours="22:00-07:00")
    assert kept_off.sms_stopped and kept_off.quiet_hours == "22:00-07:00"
    opted_in = with_preferences(stopped, email=False, sms=True, quiet_hours=None)
    assert not opted_in.sms_stopped and opted_in.consent == Consent(email=False, sms=True)


def test_an_intake_of_a_known_client_only_withdraws_consent_and_a_confirmed_change_applies() -> (
    None
):
    known = Contact(
        client_id="c-1",
        location_id="beaverton",
        email="jo@example.com",
        phone="+15035550100",
        consent=Consent(email=False, sms=True),  # the client opted out of e-mail themselves
        quiet_hours="20:00-09:00",
    )
    stated = ClientRecord(
        client_id="c-1",
        name="Jo",
        email="jo@example.com",
        phone="+15035550100",
        contact_consent=ContactConsent(email=True, sms=False),
    )
    from_intake = contact_from(
        stated, client_id="c-1", location_id="brooklyn", known=known, confirmed=False
    )
    # the e-mail opt-in the intake carries grants nothing; its SMS withdrawal applies
    assert from_intake.consent == Consent(email=False, sms=False)
    assert (from_intake.location_id, from_intake.quiet_hours) == ("beaverton", "20:00-09:00")
    confirmed = contact_from(
        stated, client_id="c-1", location_id="brooklyn", known=known, confirmed=True
    )
    assert confirmed.consent == Consent(email=True, sms=False)
    first = contact_from(
        stated, client_id="c-1", location_id="brooklyn", known=None, confirmed=False
    )
    assert first.consent == Consent(email=True, sms=False) and first.location_id == "brooklyn"
