"""The matching rule (services/intake/matching.py) as a table, and what a returning
client's intake may change (services/intake/contact_changes.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.intake.contact_changes import (
    ChangeDecided,
    ContactChange,
    ProposedDetails,
    confirmed,
    decided,
    proposed_by,
    with_withdrawals,
)
from services.intake.matching import (
    KnownClient,
    decide,
    joined,
    known_from,
    normalised_name,
)
from shared.events.intake import ClientDetails, ClientRecord, ContactConsent

PHONE = "+15035550100"
DOB = date(1980, 2, 1)

ANA = KnownClient(
    client_id="ana",
    names=("ana lopez",),
    emails=("ana@example.com",),
    phones=(PHONE,),
    date_of_birth=DOB,
)
BEN = KnownClient(client_id="ben", names=("ben lopez",), phones=(PHONE,))
NO_DOB = KnownClient(client_id="nodob", names=("sam lee",), emails=("sam@example.com",))
SAM_TOO = KnownClient(client_id="samtoo", names=("sam lee",), emails=("sam@example.com",))
SAM_BOTH = KnownClient(
    client_id="samboth", names=("sam lee",), emails=("sam@example.com",), phones=(PHONE,)
)


def stated(name: str, **fields: Any) -> ClientDetails:
    return ClientDetails(name=name, **fields)


# (case, stated, candidates, matched client or None, flagged ids with their conflicts)
TABLE: list[
    tuple[str, ClientDetails, list[KnownClient], str | None, dict[str, tuple[str, ...]]]
] = [
    ("name and phone agree", stated("Ana Lopez", phone=PHONE), [ANA], "ana", {}),
    (
        "name, e-mail and date of birth agree",
        stated("Ana Lopez", email="ana@example.com", date_of_birth=DOB),
        [ANA],
        "ana",
        {},
    ),
    (
        "case, accents and spacing do not count",
        stated("  ÁNA   lópez ", email="ANA@Example.com"),
        [ANA],
        "ana",
        {},
    ),
    (
        "the e-mail agrees and the phone is new: the same client (the phone waits)",
        stated("Ana Lopez", email="ana@example.com", phone="+15035550199"),
        [ANA],
        "ana",
        {},
    ),
    (
        "a family sharing a phone: another name is a new client",
        stated("Ben Lopez", phone=PHONE),
        [ANA],
        None,
        {"ana": ("another name",)},
    ),
    (
        "another location types a known e-mail with another name",
        stated("Someone Else", email="ana@example.com"),
        [ANA],
        None,
        {"ana": ("another name",)},
    ),
    (
        "the same name with another date of birth (a parent and child namesake)",
        stated("Ana Lopez", phone=PHONE, date_of_birth=date(2010, 5, 5)),
        [ANA],
        None,
        {"ana": ("another date of birth",)},
    ),
    (
        "a date of birth only one side gives is no evidence either way",
        stated("Sam Lee", email="sam@example.com", date_of_birth=DOB),
        [NO_DOB],
        "nodob",
        {},
    ),
    (
        "the name alone, without a shared handle, is nothing",
        stated("Ana Lopez", email="other@example.com"),
        [ANA],
        None,
        {},
    ),
    (
        "the returning family member matches and the other is flagged",
        stated("Ben Lopez", phone=PHONE),
        [ANA, BEN],
        "ben",
        {"ana": ("another name",)},
    ),
    (
        "two records match equally: no guess, flagged against both",
        stated("Sam Lee", email="sam@example.com"),
        [NO_DOB, SAM_TOO],
        None,
        {"nodob": ("several clients match",), "samtoo": ("several clients match",)},
    ),
    (
        "the record agreeing on more handles wins",
        stated("Sam Lee", email="sam@example.com", phone=PHONE),
        [NO_DOB, SAM_BOTH],
        "samboth",
        {},
    ),
    ("no handle at all: a new client", stated("Ana Lopez"), [ANA], None, {}),
]


@pytest.mark.parametrize(
    ("details", "candidates", "matched", "flagged"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_the_matching_rule(
    details: ClientDetails,
    candidates: list[KnownClient],
    matched: str | None,
    flagged: dict[str, tuple[str, ...]],
) -> None:
    decision = decide(details, candidates)
    assert decision.client_id == matched
    assert {d.client_id: d.conflicts for d in decision.possible_duplicates} == flagged


def test_names_normalise_case_accents_and_spacing() -> None:
    assert normalised_name("  José\tMARÍA  Núñez ") == "jose maria nunez"
    assert normalised_name("Zoë") == normalised_name("zoe")
    assert normalised_name("Ana") != normalised_name("Anna")


def test_a_merged_record_finds_the_survivor_by_its_names_and_handles() -> None:
    survivor = known_from("a", stated("Robert Smith", email="rob@example.com"))
    retired = known_from("b", stated("Bob Smith", phone=PHONE, date_of_birth=DOB))
    both = joined(survivor, retired)
    assert both.client_id == "a" and both.date_of_birth == DOB
    assert decide(stated("Bob Smith", phone=PHONE), [both]).client_id == "a"
    assert decide(stated("Robert Smith", email="rob@example.com"), [both]).client_id == "a"


RECORD = ClientRecord(
    client_id="ana",
    name="Ana Lopez",
    email="ana@example.com",
    phone=PHONE,
    contact_consent={"email": True, "sms": True},
)


def test_an_intake_withdraws_consent_at_once_but_never_grants_it() -> None:
    narrowed = with_withdrawals(
        RECORD, stated("Ana Lopez", phone=PHONE, contact_consent={"email": True, "sms": False})
    )
    assert narrowed.contact_consent.model_dump() == {"email": True, "sms": False}
    assert narrowed.phone == PHONE and narrowed.email == "ana@example.com"
    none = RECORD.model_copy(update={"contact_consent": ContactConsent()})
    kept = with_withdrawals(
        none,
        stated("Ana Lopez", contact_consent={"email": True, "sms": True}),
    )
    assert kept.contact_consent.model_dump() == {"email": False, "sms": False}


def test_what_an_intake_states_differently_waits_and_a_confirmation_applies_it() -> None:
    intake = stated(
        "ana lópez",
        email="ANA@example.com",
        phone="+15035550199",
        date_of_birth=DOB,
        language="es",
        contact_consent={"email": True, "sms": True},
    )
    proposed = proposed_by(RECORD, intake)
    assert proposed == ProposedDetails(phone="+15035550199", date_of_birth=DOB, language="es")
    assert proposed_by(RECORD, stated("Ana Lopez")).is_empty()  # leaving a field out is no change
    applied = confirmed(RECORD, proposed)
    assert (applied.phone, applied.language, applied.date_of_birth) == ("+15035550199", "es", DOB)
    assert applied.email == RECORD.email and applied.client_id == "ana"
    asked = proposed_by(
        RECORD.model_copy(update={"contact_consent": ContactConsent(email=True)}),
        stated("Ana Lopez", contact_consent={"email": True, "sms": True}),
    )
    assert asked.consent == ["sms"]


def test_a_change_is_decided_once_and_a_repeat_answers_the_first_decision() -> None:
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    pending = ContactChange(
        change_id="c1",
        intake_id="i1",
        location_id="beaverton",
        proposed=ProposedDetails(phone="+15035550199"),
        recorded_at=at,
    )
    done = decided(pending, confirm=True, by="desk", at=at)
    assert (done.status, done.decided_by, done.decided_at) == ("confirmed", "desk", at)
    assert done.proposed == pending.proposed
    # the same decision again, by another key later, leaves the first one standing
    assert decided(done, confirm=True, by="admin", at=datetime.now(UTC)) == done
    with pytest.raises(ChangeDecided, match="already confirmed"):
        decided(done, confirm=False, by="admin", at=at)
    assert decided(pending, confirm=False, by="desk", at=at).status == "declined"
