"""Is the person on an intake a client the chain already knows? The written rule.

A client is recognised only when more than one handle agrees:

- the same e-mail or the same phone (this is how candidates are found), and
- the same name, compared normalised (case, accents and spacing do not count), and
- no other date of birth, where both the intake and the record give one.

Conflicting evidence - another name, or another date of birth, on the same e-mail or
phone - never joins two records: the intake makes a **new** client, flagged as a
possible duplicate of the record it conflicts with (a family sharing a phone, an
e-mail typed at another location). When several records match, the one that agrees
on more handles wins; a tie is not guessed at: a new client, flagged against each.
Staff resolve flags by merging (admin) or by leaving two people apart.

Pure: the directory finds the candidates (every client recorded with the intake's
e-mail or phone) and applies the decision.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.intake import ClientDetails

Handle = Literal["email", "phone"]
Conflict = Literal["another name", "another date of birth", "several clients match"]


class KnownClient(BaseModel):
    """What the directory knows about one client, for matching: every name and
    handle confirmed for them (merged records included), normalised."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    date_of_birth: date | None = None


class PossibleDuplicate(BaseModel):
    """A record the intake shares a handle with, and why it was not joined to it."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    shared: tuple[Handle, ...]
    conflicts: tuple[Conflict, ...]


class Decision(BaseModel):
    """``client_id`` is the known client the intake names, or None for a new one."""

    model_config = ConfigDict(frozen=True)

    client_id: str | None = None
    possible_duplicates: tuple[PossibleDuplicate, ...] = Field(default=())


def normalised_name(name: str) -> str:
    """'  José  MARÍA ' and 'jose maria' are one name: accents, case and spacing dropped."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.casefold().split())


def normalised_email(email: str) -> str:
    return email.strip().lower()


def handles_of(client: ClientDetails) -> list[tuple[Handle, str]]:
    """The handles an intake can be found by, normalised (phones are E.164 already)."""
    found: list[tuple[Handle, str]] = []
    if client.email:
        found.append(("email", normalised_email(client.email)))
    if client.phone:
        found.append(("phone", client.phone))
    return found


def known_from(client_id: str, client: ClientDetails) -> KnownClient:
    """The matching record of a client first seen with these details."""
    return KnownClient(
        client_id=client_id,
        names=(normalised_name(client.name),),
        emails=tuple(v for h, v in handles_of(client) if h == "email"),
        phones=tuple(v for h, v in handles_of(client) if h == "phone"),
        date_of_birth=client.date_of_birth,
    )


def decide(stated: ClientDetails, candidates: Sequence[KnownClient]) -> Decision:
    """Which known client (if any) the intake's ``stated`` details name."""
    matches: list[tuple[int, KnownClient]] = []
    conflicting: list[PossibleDuplicate] = []
    for known in candidates:
        shared = _shared_handles(stated, known)
        if not shared:
            continue
        conflicts = _conflicts(stated, known)
        if conflicts:
            conflicting.append(
                PossibleDuplicate(client_id=known.client_id, shared=shared, conflicts=conflicts)
            )
        else:
            dob_agrees = stated.date_of_birth is not None and known.date_of_birth is not None
            matches.append((len(shared) + int(dob_agrees), known))
    if not matches:
        return Decision(possible_duplicates=tuple(conflicting))
    best = max(score for score, _ in matches)
    leaders = [known for score, known in matches if score == best]
    if len(leaders) == 1:
        return Decision(client_id=leaders[0].client_id, possible_duplicates=tuple(conflicting))
    tied = tuple(
        PossibleDuplicate(
            client_id=known.client_id,
            shared=_shared_handles(stated, known),
            conflicts=("several clients match",),
        )
        for known in leaders
    )
    return Decision(possible_duplicates=tied + tuple(conflicting))


def _shared_handles(stated: ClientDetails, known: KnownClient) -> tuple[Handle, ...]:
    return tuple(
        handle
        for handle, value in handles_of(stated)
        if value in (known.emails if handle == "email" else known.phones)
    )


def _conflicts(stated: ClientDetails, known: KnownClient) -> tuple[Conflict, ...]:
    found: list[Conflict] = []
    if normalised_name(stated.name) not in known.names:
        found.append("another name")
    if (
        stated.date_of_birth is not None
        and known.date_of_birth is not None
        and stated.date_of_birth != known.date_of_birth
    ):
        found.append("another date of birth")
    return tuple(found)


def joined(known: KnownClient, other: KnownClient) -> KnownClient:
    """``known`` also recognised by everything ``other`` was: after a confirmed change
    (``known`` from the confirmed details) or a merge (``other`` the retired record).
    ``known``'s date of birth stands; ``other``'s fills it only where it is missing."""
    return KnownClient(
        client_id=known.client_id,
        names=_union(known.names, other.names),
        emails=_union(known.emails, other.emails),
        phones=_union(known.phones, other.phones),
        date_of_birth=known.date_of_birth or other.date_of_birth,
    )


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))
