"""What breaks a reader of an event's old schema, and what does not."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from shared.compat import breaking_changes


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
