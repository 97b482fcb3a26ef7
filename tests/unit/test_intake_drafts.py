"""Multi-step intake drafts (services/intake/drafts.py): partial sections, how a
patch merges into a draft, and what a draft still lacks before it can be submitted."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from services.intake.drafts import (
    SECTIONS,
    IntakeDraft,
    Missing,
    Section,
    assemble,
    merged,
    partial,
    patched_sections,
)
from shared.events.intake import (
    ClientDetails,
    Complaint,
    Consent,
    ContactConsent,
    Health,
    History,
    IntakeDocument,
    Preferences,
)

LOCATION = "loc-downtown"

CLIENT: dict[str, Any] = {"name": "Ana Ruiz", "email": "ana@example.com", "phone": "+15551234567"}
NECK: dict[str, Any] = {
    "region": "neck",
    "intensity": 6,
    "qualities": ["ache"],
    "onset": "2026-06-01",
}
COMPLETE: dict[str, Any] = {
    "client": CLIENT,
    "complaints": [NECK],
    "health": {},
    "consent": {"treatment": True},
}

MODELS: list[type[BaseModel]] = [ClientDetails, Complaint, History, Health, Preferences, Consent]


def errors_of(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, tuple[Any, ...]]]:
    return [(error["type"], tuple(error["loc"])) for error in exc.value.errors()]


def missing_locs(result: IntakeDocument | list[Missing]) -> list[tuple[str | int, ...]]:
    assert isinstance(result, list), f"expected missing items, got a document: {result!r}"
    assert all(isinstance(item, Missing) for item in result)
    return [tuple(item.loc) for item in result]


def complete(**sections: Any) -> dict[str, Any]:
    """The complete draft with some sections replaced (``None`` drops one)."""
    draft = copy.deepcopy(COMPLETE)
    for name, value in sections.items():
        if value is None:
            draft.pop(name, None)
        else:
            draft[name] = value
    return draft


# --- partial -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_partial_makes_every_field_optional(model: type[BaseModel]) -> None:
    draft_model = partial(model)
    assert set(draft_model.model_fields) == set(model.model_fields)
    assert not any(f.is_required() for f in draft_model.model_fields.values())
    empty = draft_model()
    assert all(getattr(empty, name) is None for name in model.model_fields)
    assert empty.model_dump(exclude_unset=True) == {}


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_partial_accepts_none_for_every_field(model: type[BaseModel]) -> None:
    draft_model = partial(model)
    nulls = dict.fromkeys(model.model_fields)
    assert draft_model.model_validate(nulls).model_dump(exclude_unset=True) == nulls


def test_partial_leaves_the_original_model_alone() -> None:
    partial(ClientDetails)
    partial(Complaint)
    assert ClientDetails.model_fields["name"].is_required()
    assert Complaint.model_fields["region"].is_required()
    assert ClientDetails.model_fields["language"].default == "en"
    with pytest.raises(ValidationError):
        ClientDetails.model_validate({})


def test_partial_is_named_after_the_model_and_forbids_unknown_fields() -> None:
    draft_model = partial(ClientDetails)
    assert draft_model.__name__ == "ClientDetailsDraft"
    assert draft_model.model_config.get("extra") == "forbid"


def test_partial_keeps_field_metadata() -> None:
    description = History.model_fields["other_practitioners"].description
    assert description
    assert partial(History).model_fields["other_practitioners"].description == description


def test_partial_of_a_model_with_factories_and_defaults() -> None:
    class Thing(BaseModel):
        tags: list[str] = Field(default_factory=list, max_length=2)
        count: int = Field(default=3, ge=0)
        label: str

    draft_model = partial(Thing)
    empty = draft_model()
    assert empty.model_dump() == {"tags": None, "count": None, "label": None}
    assert draft_model(tags=["a"], count=0, label="x").model_dump() == {
        "tags": ["a"],
        "count": 0,
        "label": "x",
    }
    with pytest.raises(ValidationError) as exc:
        draft_model(tags=["a", "b", "c"])
    assert errors_of(exc) == [("too_long", ("tags",))]
    with pytest.raises(ValidationError) as exc:
        draft_model(count=-1)
    assert errors_of(exc) == [("greater_than_equal", ("count",))]


@pytest.mark.parametrize(
    ("model", "data", "expected"),
    [
        (Complaint, {"intensity": 11}, ("less_than_equal", ("intensity",))),
        (Complaint, {"intensity": -1}, ("greater_than_equal", ("intensity",))),
        (Complaint, {"region": "toe"}, ("literal_error", ("region",))),
        (Complaint, {"side": "up"}, ("literal_error", ("side",))),
        (Complaint, {"qualities": ["itchy"]}, ("literal_error", ("qualities", 0))),
        (Complaint, {"qualities": ["ache"] * 10}, ("too_long", ("qualities",))),
        (Complaint, {"duration_weeks": 5201}, ("less_than_equal", ("duration_weeks",))),
        (Complaint, {"onset": "last spring"}, ("date_from_datetime_parsing", ("onset",))),
        (ClientDetails, {"phone": "5551234567"}, ("string_pattern_mismatch", ("phone",))),
        (ClientDetails, {"phone": "+0551234567"}, ("string_pattern_mismatch", ("phone",))),
        (ClientDetails, {"language": "EN"}, ("string_pattern_mismatch", ("language",))),
        (ClientDetails, {"name": ""}, ("string_too_short", ("name",))),
        (ClientDetails, {"email": "not-an-email"}, ("value_error", ("email",))),
        (ClientDetails, {"nickname": "Ani"}, ("extra_forbidden", ("nickname",))),
        (
            ClientDetails,
            {"contact_consent": {"fax": True}},
            ("extra_forbidden", ("contact_consent", "fax")),
        ),
        (Health, {"precautions": [{"code": "flu"}]}, ("literal_error", ("precautions", 0, "code"))),
        (
            Preferences,
            {"max_sessions_per_week": 8},
            ("less_than_equal", ("max_sessions_per_week",)),
        ),
        (Preferences, {"days": ["monday"]}, ("literal_error", ("days", 0))),
        (Consent, {"treatment": "maybe"}, ("bool_parsing", ("treatment",))),
    ],
)
def test_partial_keeps_each_fields_checks(
    model: type[BaseModel], data: dict[str, Any], expected: tuple[str, tuple[Any, ...]]
) -> None:
    with pytest.raises(ValidationError) as exc:
        partial(model).model_validate(data)
    assert errors_of(exc) == [expected]


def test_partial_complaint_drops_the_onset_or_duration_rule() -> None:
    # not answered yet is only reported by assemble; a patch with just the region is fine
    draft_model = partial(Complaint)
    assert draft_model.model_validate({"region": "neck"}).model_dump(exclude_unset=True) == {
        "region": "neck"
    }
    with pytest.raises(ValidationError):
        Complaint.model_validate({"region": "neck", "intensity": 3})


def test_partial_accepts_valid_values() -> None:
    client = partial(ClientDetails).model_validate({**CLIENT, "language": "es"})
    assert client.model_dump(exclude_unset=True) == {**CLIENT, "language": "es"}


# --- IntakeDraft ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"complaints": [{"region": "toe"}]}, ("literal_error", ("complaints", 0, "region"))),
        (
            {"complaints": [NECK, {"intensity": 11}]},
            ("less_than_equal", ("complaints", 1, "intensity")),
        ),
        ({"client": {"phone": "555"}}, ("string_pattern_mismatch", ("client", "phone"))),
        ({"client": {"nick": "A"}}, ("extra_forbidden", ("client", "nick"))),
        ({"vitals": {}}, ("extra_forbidden", ("vitals",))),
        ({"goals": [1]}, ("string_type", ("goals", 0))),
        ({"goals": ["g"] * 21}, ("too_long", ("goals",))),
        ({"complaints": [{}] * 11}, ("too_long", ("complaints",))),
        (
            {"health": {"contraindications": [{"code": "cold"}]}},
            ("literal_error", ("health", "contraindications", 0, "code")),
        ),
        ({"preferences": {"modality": "swedish"}}, ("literal_error", ("preferences", "modality"))),
        ({"history": {"notes": "x" * 2001}}, ("string_too_long", ("history", "notes"))),
    ],
)
def test_intake_draft_errors_carry_the_field_path(
    body: dict[str, Any], expected: tuple[str, tuple[Any, ...]]
) -> None:
    with pytest.raises(ValidationError) as exc:
        IntakeDraft.model_validate(body)
    assert errors_of(exc) == [expected]


def test_intake_draft_reports_every_bad_field() -> None:
    with pytest.raises(ValidationError) as exc:
        IntakeDraft.model_validate(
            {"client": {"phone": "1"}, "complaints": [{"region": "toe", "intensity": 11}]}
        )
    assert sorted(errors_of(exc)) == sorted(
        [
            ("string_pattern_mismatch", ("client", "phone")),
            ("literal_error", ("complaints", 0, "region")),
            ("less_than_equal", ("complaints", 0, "intensity")),
        ]
    )


def test_intake_draft_accepts_the_complete_draft_and_empty_sections() -> None:
    IntakeDraft.model_validate(COMPLETE)
    IntakeDraft.model_validate({section: None for section in SECTIONS})
    IntakeDraft.model_validate({"complaints": [{}], "health": {}, "goals": []})


# --- patched_sections ----------------------------------------------------------------------


def test_patched_sections_of_an_empty_patch_is_empty() -> None:
    assert patched_sections(IntakeDraft()) == {}
    assert patched_sections(IntakeDraft.model_validate({})) == {}


def test_patched_sections_only_the_sections_and_fields_sent() -> None:
    patch = IntakeDraft.model_validate({"client": {"name": "Ana"}, "goals": ["sleep"]})
    assert patched_sections(patch) == {"client": {"name": "Ana"}, "goals": ["sleep"]}


def test_patched_sections_keeps_explicit_nulls() -> None:
    patch = IntakeDraft.model_validate({"client": {"email": None, "name": "Ana"}})
    sections = patched_sections(patch)
    assert sections == {"client": {"email": None, "name": "Ana"}}
    # ... so that they remove the field from the stored section
    stored = {"name": "A", "email": "a@example.com", "phone": "+15551234567"}
    assert merged(stored, sections["client"], section="client") == {
        "name": "Ana",
        "phone": "+15551234567",
    }


def test_patched_sections_keeps_a_null_section() -> None:
    assert patched_sections(IntakeDraft.model_validate({"health": None})) == {"health": None}


def test_patched_sections_keeps_an_empty_section() -> None:
    assert patched_sections(IntakeDraft.model_validate({"health": {}})) == {"health": {}}


def test_patched_sections_only_fields_sent_inside_list_items() -> None:
    patch = IntakeDraft.model_validate({"complaints": [{"region": "neck"}, {"intensity": 3}]})
    assert patched_sections(patch) == {"complaints": [{"region": "neck"}, {"intensity": 3}]}


def test_patched_sections_is_json() -> None:
    patch = IntakeDraft.model_validate(
        {
            "client": {"date_of_birth": date(1990, 1, 2), "contact_consent": {"sms": True}},
            "complaints": [{"onset": date(2026, 6, 1)}],
        }
    )
    assert patched_sections(patch) == {
        "client": {"date_of_birth": "1990-01-02", "contact_consent": {"sms": True}},
        "complaints": [{"onset": "2026-06-01"}],
    }


def test_patched_sections_come_in_section_order() -> None:
    body = {section: None for section in reversed(SECTIONS)}
    assert list(patched_sections(IntakeDraft.model_validate(body))) == list(SECTIONS)


# --- merged --------------------------------------------------------------------------------


def test_merged_object_section_field_by_field() -> None:
    stored = {"name": "Ana", "email": "ana@example.com"}
    assert merged(stored, {"phone": "+15551234567"}, section="client") == {
        "name": "Ana",
        "email": "ana@example.com",
        "phone": "+15551234567",
    }
    assert merged(stored, {"name": "Ana Ruiz"}, section="client") == {
        "name": "Ana Ruiz",
        "email": "ana@example.com",
    }


def test_merged_null_removes_a_field_and_keeps_the_others() -> None:
    stored = {"name": "Ana", "email": "ana@example.com", "language": "es"}
    assert merged(stored, {"email": None}, section="client") == {"name": "Ana", "language": "es"}
    assert merged(stored, {"email": None, "language": "en"}, section="client") == {
        "name": "Ana",
        "language": "en",
    }


def test_merged_null_for_an_absent_field_is_harmless() -> None:
    assert merged({"name": "Ana"}, {"phone": None}, section="client") == {"name": "Ana"}


def test_merged_empty_patch_keeps_the_section() -> None:
    assert merged({"notes": "desk job"}, {}, section="history") == {"notes": "desk job"}


def test_merged_does_not_change_the_stored_section() -> None:
    stored = {"name": "Ana", "email": "ana@example.com"}
    patch = {"email": None, "phone": "+15551234567"}
    merged(stored, patch, section="client")
    assert stored == {"name": "Ana", "email": "ana@example.com"}
    assert patch == {"email": None, "phone": "+15551234567"}


def test_merged_replaces_a_field_value_whole() -> None:
    # only the top level of an object section is merged: a list or object value is one field
    stored = {"work_posture": ["computer work", "standing"], "notes": "n"}
    assert merged(stored, {"work_posture": ["driving"]}, section="history") == {
        "work_posture": ["driving"],
        "notes": "n",
    }
    client = {"name": "Ana", "contact_consent": {"sms": True}}
    assert merged(client, {"contact_consent": {"email": True}}, section="client") == {
        "name": "Ana",
        "contact_consent": {"email": True},
    }


@pytest.mark.parametrize(
    ("section", "stored", "patch"),
    [
        ("complaints", [NECK, {"region": "jaw"}], [{"region": "knee"}]),
        ("complaints", [NECK], []),
        ("goals", ["sleep", "run"], ["lift my child"]),
        ("goals", ["sleep"], []),
    ],
)
def test_merged_list_sections_are_replaced_whole(
    section: Section, stored: list[Any], patch: list[Any]
) -> None:
    assert merged(stored, patch, section=section) == patch


@pytest.mark.parametrize(
    ("section", "patch"),
    [
        ("client", {"name": "Ana"}),
        ("health", {}),
        ("preferences", {"modality": "nmt"}),
        ("complaints", [NECK]),
        ("goals", ["sleep"]),
    ],
)
def test_merged_into_nothing_gives_the_patch(section: Section, patch: Any) -> None:
    assert merged(None, patch, section=section) == patch


@pytest.mark.parametrize("section", SECTIONS)
def test_merged_null_section_clears_it(section: Section) -> None:
    stored: Any = ["x"] if section in ("complaints", "goals") else {"x": 1}
    assert merged(stored, None, section=section) is None


def test_merged_into_nothing_drops_nulls() -> None:
    patch = {"name": "Ana", "language": None}
    assert merged(None, patch, section="client") == merged({}, patch, section="client")


# --- assemble ------------------------------------------------------------------------------


def test_assemble_empty_draft_lists_everything_missing() -> None:
    locs = missing_locs(assemble(LOCATION, {}))
    assert set(locs) == {("client",), ("complaints",), ("health",), ("consent", "treatment")}


def test_assemble_empty_draft_messages() -> None:
    result = assemble(LOCATION, {})
    assert isinstance(result, list)
    messages = {tuple(item.loc): item.msg for item in result}
    assert messages[("client",)] == "not answered yet"
    assert messages[("complaints",)] == "not answered yet"
    assert "health" in messages[("health",)]
    assert "consent" in messages[("consent", "treatment")]


def test_assemble_complete_draft_gives_a_document() -> None:
    document = assemble(LOCATION, COMPLETE)
    assert isinstance(document, IntakeDocument)
    assert document.location_id == LOCATION
    assert document.client.name == "Ana Ruiz"
    assert document.client.language == "en"
    assert document.client.contact_consent == ContactConsent()
    assert [c.region for c in document.complaints] == ["neck"]
    assert document.complaints[0].onset == date(2026, 6, 1)
    assert document.health == Health()
    assert document.consent == Consent(treatment=True)


def test_assemble_does_not_change_the_sections() -> None:
    sections = complete(consent={"treatment": True, "contact": {"sms": True}})
    before = copy.deepcopy(sections)
    assemble(LOCATION, sections)
    assert sections == before


def test_assemble_client_without_name() -> None:
    result = assemble(LOCATION, complete(client={"email": "ana@example.com"}))
    assert missing_locs(result) == [("client", "name")]
    assert isinstance(result, list)
    assert result[0].msg == "not answered yet"


def test_assemble_complaint_without_region_or_intensity() -> None:
    result = assemble(LOCATION, complete(complaints=[{"onset": "2026-06-01"}]))
    assert set(missing_locs(result)) == {
        ("complaints", 0, "region"),
        ("complaints", 0, "intensity"),
    }


@pytest.mark.parametrize("index", [0, 1])
def test_assemble_complaint_without_onset_or_duration(index: int) -> None:
    incomplete = {"region": "jaw", "intensity": 4}
    complaints = [incomplete, NECK] if index == 0 else [NECK, incomplete]
    result = assemble(LOCATION, complete(complaints=complaints))
    assert missing_locs(result) == [("complaints", index)]
    assert isinstance(result, list)
    assert "onset" in result[0].msg
    assert "duration_weeks" in result[0].msg


@pytest.mark.parametrize(
    "complaint",
    [
        {"region": "jaw", "intensity": 4, "duration_weeks": 0},
        {"region": "jaw", "intensity": 4, "onset": "2026-01-01"},
    ],
)
def test_assemble_complaint_with_onset_or_duration_is_enough(complaint: dict[str, Any]) -> None:
    assert isinstance(assemble(LOCATION, complete(complaints=[complaint])), IntakeDocument)


def test_assemble_empty_complaints_list_is_missing() -> None:
    assert missing_locs(assemble(LOCATION, complete(complaints=[]))) == [("complaints",)]


def test_assemble_without_health_lists_health() -> None:
    assert missing_locs(assemble(LOCATION, complete(health=None))) == [("health",)]


def test_assemble_health_given_as_empty_counts_as_answered() -> None:
    document = assemble(LOCATION, complete(health={}))
    assert isinstance(document, IntakeDocument)
    assert document.health == Health()


def test_assemble_keeps_the_health_answers() -> None:
    health = {"precautions": [{"code": "pregnancy"}], "medications": ["warfarin"]}
    document = assemble(LOCATION, complete(health=health))
    assert isinstance(document, IntakeDocument)
    assert [p.code for p in document.health.precautions] == ["pregnancy"]
    assert document.health.medications == ["warfarin"]


def test_assemble_null_health_is_not_answered() -> None:
    assert ("health",) in missing_locs(assemble(LOCATION, {**COMPLETE, "health": None}))


@pytest.mark.parametrize(
    "consent",
    [None, {"treatment": False}, {}, {"contact": {"sms": True}}],
    ids=["absent", "false", "empty", "contact-only"],
)
def test_assemble_consent_to_treatment_is_required(consent: dict[str, Any] | None) -> None:
    result = assemble(LOCATION, complete(consent=consent))
    locs = missing_locs(result)
    assert ("consent", "treatment") in locs
    assert set(locs) == {("consent", "treatment")}


def test_assemble_lists_missing_consent_once() -> None:
    locs = missing_locs(assemble(LOCATION, complete(consent={})))
    assert locs.count(("consent", "treatment")) == 1


def test_assemble_null_consent_is_missing() -> None:
    locs = missing_locs(assemble(LOCATION, {**COMPLETE, "consent": None}))
    assert locs == [("consent", "treatment")]


def test_assemble_consent_treatment_false_gives_no_document() -> None:
    # the document itself would validate: only the consent rule holds it back
    sections = complete(consent={"treatment": False})
    IntakeDocument.model_validate({"location_id": LOCATION, **sections})
    assert missing_locs(assemble(LOCATION, sections)) == [("consent", "treatment")]


@pytest.mark.parametrize(
    "consent", [None, {"treatment": False}, {"treatment": True}], ids=["absent", "false", "true"]
)
def test_assemble_consent_not_required(consent: dict[str, Any] | None) -> None:
    document = assemble(LOCATION, complete(consent=consent), consent_required=False)
    assert isinstance(document, IntakeDocument)
    assert document.consent == (None if consent is None else Consent.model_validate(consent))


def test_assemble_consent_not_required_still_lists_the_rest() -> None:
    locs = missing_locs(assemble(LOCATION, {}, consent_required=False))
    assert set(locs) == {("client",), ("complaints",), ("health",)}


def test_assemble_consent_contact_becomes_the_clients_contact_consent() -> None:
    consent = {"treatment": True, "contact": {"sms": True}}
    document = assemble(LOCATION, complete(consent=consent))
    assert isinstance(document, IntakeDocument)
    assert document.client.contact_consent == ContactConsent(email=False, sms=True)
    assert document.consent is not None
    assert document.consent.contact == ContactConsent(email=False, sms=True)


def test_assemble_agreeing_contact_consent_gives_a_document() -> None:
    sections = complete(
        client={**CLIENT, "contact_consent": {"sms": True, "email": False}},
        consent={"treatment": True, "contact": {"sms": True}},
    )
    document = assemble(LOCATION, sections)
    assert isinstance(document, IntakeDocument)
    assert document.client.contact_consent == ContactConsent(email=False, sms=True)


def test_assemble_client_contact_consent_alone_is_kept() -> None:
    document = assemble(LOCATION, complete(client={**CLIENT, "contact_consent": {"email": True}}))
    assert isinstance(document, IntakeDocument)
    assert document.client.contact_consent == ContactConsent(email=True, sms=False)


def test_assemble_disagreeing_contact_consent_is_reported() -> None:
    sections = complete(
        client={**CLIENT, "contact_consent": {"sms": True}},
        consent={"treatment": True, "contact": {"sms": False}},
    )
    result = assemble(LOCATION, sections)
    assert missing_locs(result) == [("body",)]
    assert isinstance(result, list)
    assert "disagree" in result[0].msg


def test_assemble_reports_bad_values_with_their_path() -> None:
    result = assemble(LOCATION, complete(client={**CLIENT, "language": "eng"}))
    assert missing_locs(result) == [("client", "language")]


def test_assemble_reports_unknown_sections() -> None:
    assert missing_locs(assemble(LOCATION, complete(vitals={}))) == [("vitals",)]


def test_assemble_reports_an_empty_location() -> None:
    assert missing_locs(assemble("", COMPLETE)) == [("location_id",)]


def test_assemble_ignores_null_optional_sections() -> None:
    sections = {**COMPLETE, "goals": None, "history": None, "preferences": None}
    document = assemble(LOCATION, sections)
    assert isinstance(document, IntakeDocument)
    assert document.goals == []
    assert document.history == History()
    assert document.preferences == Preferences()


def test_assemble_missing_and_invalid_together() -> None:
    sections = {"client": {"email": "ana@example.com"}, "complaints": [{"region": "jaw"}]}
    locs = missing_locs(assemble(LOCATION, sections))
    assert set(locs) == {
        ("health",),
        ("consent", "treatment"),
        ("client", "name"),
        ("complaints", 0, "intensity"),
    }


CALF: dict[str, Any] = {"region": "leg", "intensity": 5, "onset": "2026-10-01"}
DVT_PATHS = [
    ("health", "dvt_signs", "calf_swelling"),
    ("health", "dvt_signs", "calf_warmth_redness"),
    ("health", "dvt_signs", "long_journey_recent"),
]


def test_assemble_calf_pain_lists_the_dvt_questions_as_missing() -> None:
    result = assemble(LOCATION, complete(complaints=[CALF]))
    assert missing_locs(result) == DVT_PATHS
    assert isinstance(result, list)
    assert result[0].msg == "Has the calf swollen up lately? (DOMAIN.md 2: deep vein thrombosis)"


def test_assemble_lists_only_the_dvt_questions_still_open() -> None:
    health = {"dvt_signs": {"calf_swelling": False, "long_journey_recent": False}}
    result = assemble(LOCATION, complete(complaints=[CALF], health=health))
    assert missing_locs(result) == [DVT_PATHS[1]]


def test_assemble_calf_pain_with_the_dvt_questions_answered_gives_a_document() -> None:
    answers = {"calf_swelling": False, "calf_warmth_redness": False, "long_journey_recent": True}
    document = assemble(LOCATION, complete(complaints=[CALF], health={"dvt_signs": answers}))
    assert isinstance(document, IntakeDocument)
    assert document.health.dvt_signs.long_journey_recent is True


def test_assemble_without_health_lists_it_and_the_dvt_questions_in_it() -> None:
    assert missing_locs(assemble(LOCATION, complete(complaints=[CALF], health=None))) == [
        ("health",),
        *DVT_PATHS,
    ]


def test_assemble_neck_pain_raises_no_dvt_question() -> None:
    assert isinstance(assemble(LOCATION, COMPLETE), IntakeDocument)


# --- properties ----------------------------------------------------------------------------

CLIENT_FIELDS = {
    "name": st.text(min_size=1, max_size=20),
    "email": st.sampled_from(["ana@example.com", "bo@clinic.example.net", "c.d@mail.example.org"]),
    # cheap strategies: regex-driven generation is slow enough to trip hypothesis' health check
    "phone": st.integers(min_value=10**9, max_value=10**14 - 1).map(lambda n: f"+{n}"),
    "language": st.sampled_from(["en", "es", "fr", "vi", "zh"]),
}
HISTORY_FIELDS = {
    "work_posture": st.lists(st.text(min_size=1, max_size=10), max_size=3),
    "notes": st.text(max_size=20),
}


def field_patches(
    fields: dict[str, st.SearchStrategy[Any]], *, nulls: bool
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            name: (st.none() | values) if nulls else values for name, values in fields.items()
        },
    )


def section_patches(
    fields: dict[str, st.SearchStrategy[Any]],
) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(field_patches(fields, nulls=True), min_size=1, max_size=7)


def last_value_wins(patches: list[dict[str, Any]]) -> dict[str, Any]:
    """The independent model: each field takes its last value; a null removes it."""
    fields: dict[str, Any] = {}
    for patch in patches:
        for name, value in patch.items():
            fields[name] = value
    return {name: value for name, value in fields.items() if value is not None}


def fold(section: Section, patches: list[Any]) -> Any:
    stored: Any = None
    for patch in patches:
        stored = merged(stored, patch, section=section)
    return stored


@given(section_patches(CLIENT_FIELDS))
def test_folding_client_patches_last_value_wins(patches: list[dict[str, Any]]) -> None:
    assert fold("client", patches) == last_value_wins(patches)


@given(section_patches(HISTORY_FIELDS))
def test_folding_history_patches_last_value_wins(patches: list[dict[str, Any]]) -> None:
    assert fold("history", patches) == last_value_wins(patches)


@given(st.lists(st.none() | st.lists(st.text(max_size=10), max_size=4), min_size=1, max_size=6))
def test_folding_goals_patches_last_list_wins(patches: list[list[str] | None]) -> None:
    assert fold("goals", patches) == patches[-1]


def draft_patches() -> st.SearchStrategy[IntakeDraft]:
    """Valid PATCH bodies touching client, history and goals (nulls only after a first value)."""
    return st.fixed_dictionaries(
        {},
        optional={
            "client": field_patches(CLIENT_FIELDS, nulls=True),
            "history": field_patches(HISTORY_FIELDS, nulls=True),
            "goals": st.lists(st.text(min_size=1, max_size=10), max_size=3),
        },
    ).map(IntakeDraft.model_validate)


@settings(deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "client": field_patches(CLIENT_FIELDS, nulls=False),
            "history": field_patches(HISTORY_FIELDS, nulls=False),
        }
    ).map(IntakeDraft.model_validate),
    st.lists(draft_patches(), max_size=5),
)
def test_patches_through_patched_sections_last_value_wins(
    first: IntakeDraft, rest: list[IntakeDraft]
) -> None:
    """The PATCH path: patched_sections of each body, merged into the stored sections."""
    stored: dict[str, Any] = {}
    sent: dict[str, list[Any]] = {}
    for patch in [first, *rest]:
        for section, value in patched_sections(patch).items():
            stored[section] = merged(stored.get(section), value, section=section)
            sent.setdefault(section, []).append(value)
    for section in ("client", "history"):
        assert stored[section] == last_value_wins(sent[section])
    if "goals" in sent:
        assert stored["goals"] == sent["goals"][-1]
    # what the session view does with the stored sections
    IntakeDraft.model_validate(stored)
    result = assemble(LOCATION, stored)
    assert isinstance(result, list)
    assert {("complaints",), ("health",), ("consent", "treatment")} <= set(missing_locs(result))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 20) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
SECTION_KEYS = st.sampled_from([*SECTIONS, "location_id", "vitals"])


def plausible_sections() -> st.SearchStrategy[dict[str, Any]]:
    """Sections that are close to valid, with the odd wrong or absent value."""
    contact = st.fixed_dictionaries({}, optional={"email": st.booleans(), "sms": st.booleans()})
    complaint = st.fixed_dictionaries(
        {},
        optional={
            "region": st.sampled_from(["neck", "jaw", "toe"]),
            "intensity": st.integers(-1, 11),
            "onset": st.sampled_from(["2026-01-01", "soon"]),
            "duration_weeks": st.integers(-1, 10),
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "client": st.none()
            | st.fixed_dictionaries(
                {},
                optional={
                    "name": st.text(max_size=5),
                    "language": st.sampled_from(["en", "EN"]),
                    "contact_consent": st.none() | contact,
                },
            ),
            "complaints": st.none() | st.lists(complaint, max_size=3),
            "health": st.none() | st.just({}),
            "goals": st.none() | st.lists(st.text(max_size=5), max_size=2),
            "consent": st.none()
            | st.fixed_dictionaries(
                {}, optional={"treatment": st.booleans(), "contact": st.none() | contact}
            ),
        },
    )


@settings(deadline=None)
@given(
    st.text(max_size=5),
    plausible_sections() | st.dictionaries(SECTION_KEYS, JSON, max_size=5),
    st.booleans(),
)
def test_assemble_never_raises(
    location_id: str, sections: dict[str, Any], consent_required: bool
) -> None:
    result = assemble(location_id, sections, consent_required=consent_required)
    if isinstance(result, IntakeDocument):
        assert location_id
        assert "health" in sections
        if consent_required:
            assert result.consent is not None
            assert result.consent.treatment is True
        if result.consent is not None and result.consent.contact is not None:
            assert result.client.contact_consent == result.consent.contact
    else:
        assert isinstance(result, list)
        assert result, "an incomplete draft names at least one missing thing"
        assert all(isinstance(item, Missing) and item.loc and item.msg for item in result)
