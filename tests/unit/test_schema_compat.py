"""What breaks a reader of an event's old schema, and what does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Field

from shared import schema_forms
from shared.compat import breaking_changes, closed_objects


class Place(BaseModel):
    name: str


class Old(BaseModel):
    visit_id: str
    pain: int = Field(ge=0, le=10)
    by: Literal["client", "clinic"]
    note: str | None = None
    place: Place
    tags: list[str] = []


def changes(new: type[BaseModel]) -> list[str]:
    return breaking_changes(Old.model_json_schema(), new.model_json_schema())


def test_the_same_schema_and_added_fields_keep_readers_working() -> None:
    class Added(Old):
        extra: str  # even a required one: readers ignore what they do not know
        more: int | None = None

    assert changes(Old) == []
    assert changes(Added) == []


class Removed(BaseModel):
    pain: int = Field(ge=0, le=10)
    by: Literal["client", "clinic"]
    note: str | None = None
    place: Place
    tags: list[str] = []


class Optional_(BaseModel):
    visit_id: str | None = None
    pain: int = Field(ge=0, le=10)
    by: Literal["client", "clinic"]
    note: str | None = None
    place: Place
    tags: list[str] = []


class Retyped(BaseModel):
    visit_id: str
    pain: str
    by: Literal["client", "clinic"]
    note: str | None = None
    place: Place
    tags: list[str] = []


class MoreValues(BaseModel):
    visit_id: str
    pain: int = Field(ge=0, le=12)
    by: Literal["client", "clinic", "system"]
    note: int | None = None
    place: Place
    tags: list[int] = []


class NestedChange(BaseModel):
    class Place(BaseModel):
        name: int

    visit_id: str
    pain: int = Field(ge=0, le=10)
    by: Literal["client", "clinic"]
    note: str | None = None
    place: Place
    tags: list[str] = []


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        (Removed, ["data.visit_id: removed"]),
        (Optional_, ["data.visit_id: may now be null", "data.visit_id: no longer required"]),
        (Retyped, ["data.pain: may now be string", "data.pain: minimum 0 loosened to None"]),
        (
            MoreValues,
            [
                "data.pain: maximum 10 loosened to 12",
                "data.by: may now be system",
                "data.note: may now be integer",
                "data.tags[]: may now be integer",
            ],
        ),
        (NestedChange, ["data.place.name: may now be integer"]),
    ],
)
def test_what_can_break_a_reader_is_named_with_its_path(
    new: type[BaseModel], expected: list[str]
) -> None:
    found = changes(new)
    for problem in expected:
        assert problem in found, found


class ClosedPlace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class Closed(Old):
    place: ClosedPlace  # type: ignore[assignment]


def test_a_schema_that_closes_an_object_breaks_the_next_additive_release() -> None:
    # what compat calls compatible (a new nested field) a closed reader refuses
    assert changes(Closed) == ["#/$defs/ClosedPlace: closed to new properties"]
    assert closed_objects(Closed.model_json_schema()) == ["#/$defs/ClosedPlace"]
    assert closed_objects({"type": "object", "unevaluatedProperties": False}) == ["#"]
    # a field named additionalProperties, a default or a mapping's values close nothing
    assert (
        closed_objects(
            {
                "properties": {"additionalProperties": {"type": "boolean", "default": False}},
                "additionalProperties": {"type": "string"},
                "default": {"additionalProperties": False},
            }
        )
        == []
    )


PUBLISHED = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("path", sorted(PUBLISHED.glob("*.schema.json")), ids=lambda p: p.name)
def test_no_published_reader_schema_closes_an_object(path: Path) -> None:
    """Every version ever published, not only the current ones: subscribers still
    validate with old files, and our next additive release must pass them."""
    assert closed_objects(json.loads(path.read_text())) == []


def test_a_published_reader_takes_what_compat_calls_compatible() -> None:
    class Place2(Place):
        floor: int | None = None

    class Grown(Old):
        place: Place2
        added: str | None = None

    assert breaking_changes(Old.model_json_schema(), Grown.model_json_schema()) == []
    reader = schema_forms.reader(Old.model_json_schema())
    grown = {"visit_id": "v-1", "pain": 3, "by": "client", "place": {"name": "B", "floor": 2}}
    jsonschema.Draft202012Validator(reader).validate({**grown, "added": "x"})
    strict = schema_forms.producer(Old.model_json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(strict).validate(grown)
