"""What a new intake of a known client may change about them, and when.

An intake never overwrites a known client's details or consent:

- a withdrawal of consent (an opt-in the record has and the intake does not) applies at
  once: sending less can harm no one, and ignoring a "no texts" would breach consent;
- everything else the intake states differently (name, e-mail, phone, date of birth,
  language, and a new opt-in) is recorded as a **pending change**. It takes effect only
  when a front desk (or admin) whose key reaches the location of that intake confirms it
  (``POST /v1/clients/{id}/contact-changes/{change_id}/confirm``), with the client in
  front of them. The intake alone is not enough: it may have been typed by someone who
  only knew the client's name and e-mail, and reminders would then go to their phone.
  The client's own channel switches (the notifier's contact preferences, STOP/START by
  SMS) apply in the notifier at once, as before.

Pure: records in, records out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.intake.matching import normalised_email, normalised_name
from shared.events.intake import ClientDetails, ClientRecord, ContactConsent

Channel = Literal["email", "sms"]
ChangeStatus = Literal["pending", "confirmed", "declined"]


class ProposedDetails(BaseModel):
    """The details an intake stated that differ from the record (None: unchanged)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    date_of_birth: date | None = None
    language: str | None = None
    consent: list[Channel] = Field(default_factory=list, description="opt-ins asked for")

    def is_empty(self) -> bool:
        return self == ProposedDetails()


class ContactChange(BaseModel):
    """A change of a known client's details that arrived with an intake."""

    model_config = ConfigDict(frozen=True)

    change_id: str
    intake_id: str
    location_id: str = Field(description="where the intake that brought it was recorded")
    proposed: ProposedDetails
    status: ChangeStatus = "pending"
    recorded_at: AwareDatetime
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, description="the staff key's id")


class ChangeDecided(Exception):
    """The change was already decided the other way."""

    def __init__(self, change: ContactChange) -> None:
        super().__init__(f"this change was already {change.status}")
        self.change = change


def decided(change: ContactChange, *, confirm: bool, by: str, at: datetime) -> ContactChange:
    """``change`` confirmed (or declined) by the staff key ``by``; one already decided
    this way stands as it was (a repeat), one decided the other way is ``ChangeDecided``."""
    wanted: ChangeStatus = "confirmed" if confirm else "declined"
    if change.status == wanted:
        return change
    if change.status != "pending":
        raise ChangeDecided(change)
    return change.model_copy(update={"status": wanted, "decided_at": at, "decided_by": by})


def with_withdrawals(recorded: ClientRecord, stated: ClientDetails) -> ClientRecord:
    """The record as an intake leaves it: only the consent it withdraws changes."""
    kept = ContactConsent(
        email=recorded.contact_consent.email and stated.contact_consent.email,
        sms=recorded.contact_consent.sms and stated.contact_consent.sms,
    )
    return recorded.model_copy(update={"contact_consent": kept})


def proposed_by(recorded: ClientRecord, stated: ClientDetails) -> ProposedDetails:
    """What ``stated`` says differently from ``recorded``; a field left out of the
    intake is not a change (the client did not say it is gone)."""
    email = stated.email if stated.email else None
    if email and recorded.email and normalised_email(email) == normalised_email(recorded.email):
        email = None
    asked: list[Channel] = []
    if stated.contact_consent.email and not recorded.contact_consent.email:
        asked.append("email")
    if stated.contact_consent.sms and not recorded.contact_consent.sms:
        asked.append("sms")
    return ProposedDetails(
        name=None
        if normalised_name(stated.name) == normalised_name(recorded.name)
        else stated.name,
        email=email,
        phone=stated.phone if stated.phone and stated.phone != recorded.phone else None,
        date_of_birth=(
            stated.date_of_birth
            if stated.date_of_birth and stated.date_of_birth != recorded.date_of_birth
            else None
        ),
        language=stated.language if stated.language != recorded.language else None,
        consent=asked,
    )


def confirmed(recorded: ClientRecord, change: ProposedDetails) -> ClientRecord:
    """The record once a front desk confirmed ``change``."""
    fields = change.model_dump(exclude={"consent"}, exclude_none=True)
    consent = recorded.contact_consent.model_copy(update=dict.fromkeys(change.consent, True))
    return recorded.model_copy(update={**fields, "contact_consent": consent})
