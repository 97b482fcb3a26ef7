"""Signed links: they open what they name until their expiry, nothing else, and any
text offered as a signature is refused rather than an error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.notifier import messages
from services.notifier.compose import Links, context_for
from shared import links
from shared.chain import load_chain_config
from tests.conftest import DEMO_CHAIN

SECRET = "a-link-secret-for-these-tests-only"
VISIT_START = datetime(2027, 3, 8, 17, tzinfo=UTC)
EXPIRES = VISIT_START + timedelta(days=30)


def test_a_link_opens_what_it_names_until_it_expires() -> None:
    sig = links.sign(SECRET, "visit", "v-1", expires=EXPIRES)
    assert links.verify(SECRET, sig, "visit", "v-1", now=VISIT_START)
    assert links.verify(SECRET, sig, "visit", "v-1", now=EXPIRES - timedelta(seconds=1))
    assert not links.verify(SECRET, sig, "visit", "v-1", now=EXPIRES)
    assert not links.verify(SECRET, sig, "visit", "v-2", now=VISIT_START)
    assert not links.verify(SECRET, sig, "offer", "v-1", now=VISIT_START)
    assert not links.verify("another-secret-of-enough-length", sig, "visit", "v-1", now=VISIT_START)


def test_the_expiry_cannot_be_changed_and_the_earlier_form_is_refused() -> None:
    sig = links.sign(SECRET, "visit", "v-1", expires=EXPIRES)
    expiry, _, mac = sig.partition(".")
    later = f"{int(expiry) + 86_400 * 365}.{mac}"
    assert not links.verify(SECRET, later, "visit", "v-1", now=VISIT_START)
    assert not links.verify(SECRET, mac, "visit", "v-1", now=VISIT_START)  # no expiry


@given(st.text(), st.text())
def test_any_text_as_a_signature_is_refused(signature: str, name: str) -> None:
    assert not links.verify(SECRET, signature, "visit", name, now=VISIT_START)


def test_a_cancelled_visit_closes_its_links_to_actions() -> None:
    assert links.may_act("booked") and links.may_act("offered") and links.may_act(None)
    assert not links.may_act("cancelled")


def test_message_links_expire_the_policy_period_after_their_visit() -> None:
    chain = load_chain_config(DEMO_CHAIN)
    urls = Links(
        secret=SECRET,
        confirm="https://c.example/v/{visit_id}.ics?sig={sig}",
        offer="https://c.example/o/{offer_id}/{action}?sig={sig}",
        checkin="https://c.example/c/{notification_id}?sig={sig}",
    )
    record = {
        "kind": "reminder",
        "location_id": "beaverton",
        "visit_id": "v-9",
        "notification_id": "n-9",
        "client_id": "c-9",
        "context": {"visit_start": VISIT_START.isoformat()},
    }
    context = context_for(record, chain=chain, plan=None, urls=urls)
    assert isinstance(context, messages.ReminderContext)
    sig = context.confirm_url.partition("sig=")[2]
    valid_for = chain.policy_for("beaverton").link_valid_after_visit
    assert links.verify(SECRET, sig, "visit", "v-9", now=VISIT_START + valid_for - timedelta(1))
    assert not links.verify(SECRET, sig, "visit", "v-9", now=VISIT_START + valid_for)
