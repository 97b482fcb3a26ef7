"""The search parameters the FHIR endpoints take, read as FHIR reads them (pure)."""

from __future__ import annotations


def patient_id_of(value: str | None) -> str | None:
    """The client id a ``patient`` parameter names: a bare id, ``Patient/<id>`` or the
    Patient's full URL; None when it names none (missing, empty, or another type)."""
    if value is None or not value.strip():
        return None
    found = value.strip().rstrip("/")
    if "/" not in found:
        return found
    resource_type, _, resource = found.rpartition("/")
    if resource_type.rsplit("/", 1)[-1] != "Patient" or not resource:
        return None
    return resource


def token_matches(value: str | None, *, system: str, code: str) -> bool:
    """Whether a token parameter takes in ``system|code``: ``72514-3`` (any system),
    ``http://loinc.org|72514-3``, or a comma-separated list of such (any one matches);
    ``|72514-3`` asks for the code without a system, which ours never is. No parameter
    takes in everything."""
    if value is None:
        return True
    for token in value.split(","):
        wanted_system, bar, wanted_code = token.strip().rpartition("|")
        if wanted_code != code:
            continue
        if not bar or wanted_system == system:
            return True
    return False
