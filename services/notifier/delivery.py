"""How one message goes out (pure: no I/O, no clock; ``now`` and randomness are
arguments).

- Consent decides the channel: e-mail when the client opted in to e-mail and
  gave an address; otherwise SMS when they opted in to SMS, gave a number and
  have not texted STOP. Nothing consented, or nothing to send to, is a
  suppression with the reason, never a silent drop. A chain that configured
  only the generic webhook hands every consented message to it; where a
  consented channel is not configured (development), the console outbox stands
  in for it, except in production.
- Quiet hours: the client's own window when they set one, else the location's.
- A transient failure is retried after a capped exponential backoff with full
  jitter, up to a number of attempts; then the message has failed.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from services.notifier.timing import in_quiet_hours
from shared.chain import parse_quiet_hours
from shared.events.intake import ClientRecord
from shared.vocabulary import Channel

SuppressionReason = Literal["no_consent", "sms_stopped", "no_contact_data", "no_channel"]


class Consent(BaseModel):
    email: bool = False
    sms: bool = False


class Contact(BaseModel):
    """What the notifier knows of how to reach one client (from the intake, then
    from the client's own preferences and SMS keywords)."""

    client_id: str
    location_id: str
    language: str = "en"
    email: str | None = None
    phone: str | None = None
    consent: Consent = Consent()
    sms_stopped: bool = False  # texted STOP; only START (or a new opt-in) undoes it
    quiet_hours: str | None = None  # the client's own window, overriding the location's


@dataclass(frozen=True)
class Route:
    """Where a message goes: the channel that carries it and the address there."""

    channel: Channel
    to: str
    template: Literal["email", "sms"]  # which texts: webhook and console carry e-mail's


@dataclass(frozen=True)
class Suppressed:
    reason: SuppressionReason
    detail: str


def route(
    contact: Contact | None, *, configured: Collection[Channel], production: bool
) -> Route | Suppressed:
    """The channel for a message to ``contact``, or why none may carry it."""
    if contact is None:
        return Suppressed("no_contact_data", "no contact details for this client")
    wants_email = contact.consent.email
    wants_sms = contact.consent.sms and not contact.sms_stopped
    if not wants_email and not wants_sms:
        if contact.consent.sms and contact.sms_stopped:
            return Suppressed("sms_stopped", "the client texted STOP")
        return Suppressed("no_consent", "the client has not opted in to any channel")
    stand_in: Channel | None = None if production else "console"
    if "webhook" in configured and not {"email", "sms"} & set(configured):
        return Route("webhook", contact.client_id, "email")
    if wants_email and contact.email:
        channel: Channel | None = "email" if "email" in configured else stand_in
        if channel is not None:
            return Route(channel, contact.email, "email")
    if wants_sms and contact.phone:
        channel = "sms" if "sms" in configured else stand_in
        if channel is not None:
            return Route(channel, contact.phone, "sms")
    if (wants_email and contact.email) or (wants_sms and contact.phone):
        return Suppressed("no_channel", "no channel is configured for what the client allows")
    return Suppressed(
        "no_contact_data", "the client opted in, but gave no address for that channel"
    )


def contact_from(
    record: ClientRecord,
    *,
    client_id: str,
    location_id: str,
    known: Contact | None,
    confirmed: bool,
) -> Contact:
    """The contact a client record leaves. An intake of a known client (``confirmed``
    False) only withdraws consent: what it states beyond that waits for a front desk
    (services/intake/contact_changes.py), and the client's own opt-ins here stand. A
    change the front desk confirmed (``client.updated``) takes effect whole. A STOP
    texted earlier, and the client's own quiet hours, are kept either way."""
    stated = Consent(email=record.contact_consent.email, sms=record.contact_consent.sms)
    if known is not None and not confirmed:
        stated = Consent(
            email=known.consent.email and stated.email, sms=known.consent.sms and stated.sms
        )
    return Contact(
        client_id=client_id,
        location_id=known.location_id if known is not None else location_id,
        language=record.language,
        email=record.email,
        phone=record.phone,
        consent=stated,
        sms_stopped=still_stopped(known, sms_consent=stated.sms),
        quiet_hours=known.quiet_hours if known is not None else None,
    )


def still_stopped(known: Contact | None, *, sms_consent: bool) -> bool:
    """Whether a STOP texted earlier still stands after a new intake: only a new
    opt-in to SMS (consent given where it was not before) undoes it."""
    if known is None or not known.sms_stopped:
        return False
    return not (sms_consent and not known.consent.sms)


def texted_stop(contact: Contact) -> Contact:
    """STOP by SMS: no SMS from now on (e-mail consent is untouched)."""
    return contact.model_copy(update={"sms_stopped": True})


def texted_start(contact: Contact) -> Contact:
    """START by SMS: the client opts in to SMS again, from the phone itself."""
    consent = contact.consent.model_copy(update={"sms": True})
    return contact.model_copy(update={"sms_stopped": False, "consent": consent})


def with_preferences(
    contact: Contact, *, email: bool, sms: bool, quiet_hours: str | None
) -> Contact:
    """The client's own choice, given at the front desk, replaces their opt-ins and
    quiet hours; opting in to SMS there undoes an earlier STOP, keeping SMS off does not."""
    return contact.model_copy(
        update={
            "consent": Consent(email=email, sms=sms),
            "sms_stopped": contact.sms_stopped and not sms,
            "quiet_hours": quiet_hours,
        }
    )


def merged_contact(
    survivor: Contact | None, retired: Contact | None, *, client_id: str
) -> Contact | None:
    """The contact of a client after a merge (``client_id``: the survivor's id): the
    survivor's details, consent and quiet hours win; the retired client's are used
    only when the survivor has none. A STOP texted from a phone the survivor keeps
    still stands, whichever record heard it."""
    kept = survivor or retired
    if kept is None:
        return None
    stopped = kept.sms_stopped or (
        retired is not None
        and retired.sms_stopped
        and retired.phone is not None
        and retired.phone == kept.phone
    )
    return kept.model_copy(update={"client_id": client_id, "sms_stopped": stopped})


def after_quiet_hours(instant: datetime, *, quiet_hours: str, zone: ZoneInfo) -> datetime:
    """``instant``, or the end of the quiet window it falls in (on the local wall
    clock, so the window keeps its meaning across DST)."""
    if not in_quiet_hours(instant, quiet_hours=quiet_hours, zone=zone):
        return instant
    _, end = parse_quiet_hours(quiet_hours)
    local = instant.astimezone(zone)
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Backoff:
    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=10)
    attempts: int = 5  # in all, the first try included


def next_attempt(
    attempts_made: int, *, now: datetime, policy: Backoff, rand: random.Random | None = None
) -> datetime | None:
    """When to try again after ``attempts_made`` failed attempts, or None when the
    message has had all its attempts. Full jitter: a uniform wait between zero and
    ``min(cap, base * 2^(attempts_made - 1))``, so a burst of failures does not
    come back as one burst."""
    if attempts_made >= policy.attempts:
        return None
    doubling = 1 << min(max(attempts_made - 1, 0), 30)
    ceiling = min(policy.cap, policy.base * doubling)
    draw = rand.random() if rand is not None else random.random()
    return now + max(timedelta(milliseconds=50), ceiling * draw)


__all__ = [
    "Backoff",
    "Consent",
    "Contact",
    "Route",
    "Suppressed",
    "SuppressionReason",
    "after_quiet_hours",
    "merged_contact",
    "next_attempt",
    "route",
    "still_stopped",
    "texted_start",
    "texted_stop",
    "with_preferences",
]
