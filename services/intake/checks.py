"""Checks of an intake that need more than its own fields: today's date at the
location, and the chain's therapists. Pure; each problem names its field."""

from __future__ import annotations

from datetime import date

from shared.chain import ChainConfig
from shared.events.intake import IntakeDocument

Problem = tuple[tuple[str | int, ...], str]


def problems(document: IntakeDocument, *, chain: ChainConfig, today: date) -> list[Problem]:
    """Dates that lie in the future, and a preferred therapist not at the location."""
    found: list[Problem] = []
    born = document.client.date_of_birth
    if born is not None and born > today:
        found.append((("client", "date_of_birth"), "lies in the future"))
    for n, complaint in enumerate(document.complaints):
        if complaint.onset is not None and complaint.onset > today:
            found.append((("complaints", n, "onset"), f"lies after today ({today})"))
    for n, item in enumerate(document.health.contraindications):
        if item.since is not None and item.since > today:
            found.append((("health", "contraindications", n, "since"), "lies in the future"))
    wanted = document.preferences.therapist_id
    at_location = {t.id for t in chain.therapists_at(document.location_id)}
    if wanted is not None and wanted not in at_location:
        found.append(
            (
                ("preferences", "therapist_id"),
                f"no therapist {wanted!r} works at {document.location_id}; "
                f"choose one of {sorted(at_location)}",
            )
        )
    return found
