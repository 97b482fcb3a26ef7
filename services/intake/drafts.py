"""Multi-step intake drafts: what a section patch does to a draft, and what the
draft still lacks before it can be submitted.

Pure. A draft is the location plus a mapping of section name to the JSON the
front desk entered so far. A patch is checked field by field as it arrives (a
wrong code is a 422 at once); what is merely not answered yet is reported as
``missing`` and only blocks the submit.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from services.intake.screening import questions_for
from shared.events.intake import (
    ClientDetails,
    Complaint,
    Consent,
    Health,
    History,
    IntakeDocument,
    Preferences,
)

Section = Literal["client", "complaints", "history", "health", "goals", "preferences", "consent"]
SECTIONS: Final[tuple[Section, ...]] = get_args(Section)
LIST_SECTIONS: Final[frozenset[Section]] = frozenset({"complaints", "goals"})
"""List sections are replaced by a patch; object sections are merged field by field."""

ANSWER_REQUIRED: Final[Mapping[Section, str]] = {
    "health": "answer the health questions, even when the answer is 'none'",
}
"""Sections the model could default but a safe intake must have answered (DOMAIN.md 2)."""


def partial(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every field optional, keeping each field's own checks."""
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        info = copy.copy(field)
        info.default = None
        info.default_factory = None
        annotation: Any = field.annotation
        fields[name] = (annotation | None, info)
    draft: type[BaseModel] = create_model(
        f"{model.__name__}Draft",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"{model.__doc__ or model.__name__} Any subset of the fields; null removes one.",
        **fields,
    )
    return draft


ClientDraft = partial(ClientDetails)
ComplaintDraft = partial(Complaint)
HistoryDraft = partial(History)
HealthDraft = partial(Health)
PreferencesDraft = partial(Preferences)
ConsentDraft = partial(Consent)


class IntakeDraft(BaseModel):
    """Sections of an intake; a PATCH sends one or more of them."""

    model_config = ConfigDict(extra="forbid")

    client: ClientDraft | None = None  # type: ignore[valid-type]
    complaints: list[ComplaintDraft] | None = Field(  # type: ignore[valid-type]
        default=None, max_length=10, description="replaces the whole list"
    )
    history: HistoryDraft | None = None  # type: ignore[valid-type]
    health: HealthDraft | None = None  # type: ignore[valid-type]
    goals: list[str] | None = Field(
        default=None, max_length=20, description="replaces the whole list"
    )
    preferences: PreferencesDraft | None = None  # type: ignore[valid-type]
    consent: ConsentDraft | None = None  # type: ignore[valid-type]


class Missing(BaseModel):
    """Something the draft must still answer before it can be submitted."""

    loc: list[str | int]
    msg: str


def merged(stored: Any, patch: Any, *, section: Section) -> Any:
    """A section after a patch: lists are replaced, objects merged (null removes a field,
    a null section removes the section)."""
    if patch is None:
        return None
    if section in LIST_SECTIONS:
        return [_answered(item) for item in patch] if isinstance(patch, list) else patch
    result = dict(stored) if isinstance(stored, dict) else {}
    for field, value in patch.items():
        if value is None:
            result.pop(field, None)
        else:
            result[field] = value
    return result


def _answered(item: Any) -> Any:
    """A list item without its null fields: null means "not answered", not a value."""
    return {k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item


def patched_sections(draft: IntakeDraft) -> dict[Section, Any]:
    """The sections a patch touches, as JSON (only the fields it actually sent)."""
    sent = draft.model_dump(mode="json", exclude_unset=True)
    return {section: sent[section] for section in SECTIONS if section in sent}


def assemble(
    location_id: str, sections: Mapping[str, Any], *, consent_required: bool = True
) -> IntakeDocument | list[Missing]:
    """The intake document, or everything still missing from it: the screening
    questions its answers raise (``before_submit``, e.g. the DVT questions for calf
    pain) among them."""
    sections = {k: v for k, v in sections.items() if v is not None}
    missing = [
        Missing(loc=[section], msg=message)
        for section, message in ANSWER_REQUIRED.items()
        if section not in sections
    ]
    consent = sections.get("consent")
    if consent_required and not (isinstance(consent, dict) and consent.get("treatment") is True):
        missing.append(
            Missing(loc=["consent", "treatment"], msg="the client's consent to treatment")
        )
    raw = {**sections, "location_id": location_id}
    try:
        document = IntakeDocument.model_validate(raw)
    except ValidationError as exc:
        listed = {tuple(item.loc) for item in missing}
        for error in exc.errors():
            loc = list(error["loc"]) or ["body"]
            if tuple(loc) not in listed:
                listed.add(tuple(loc))
                missing.append(Missing(loc=loc, msg=_message(error)))
        return missing
    missing += [
        Missing(loc=["health", *path], msg=f"{question} ({asked.reason.rule})")
        for asked in questions_for(document, today=None)
        if asked.before_submit
        for path, question in asked.open_questions
    ]
    return missing or document


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "missing" and error["msg"] == "Field required":
        return "not answered yet"
    return str(error["msg"])


__all__ = [
    "SECTIONS",
    "IntakeDraft",
    "Missing",
    "Section",
    "assemble",
    "merged",
    "partial",
    "patched_sections",
]
