"""The published reader schemas take what a later additive release may add, at
every level of every event; the producer schemas take exactly what this release
emits and nothing more."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.asyncapi import asyncapi_document, payload_name
from shared.codec import encode, wrap
from shared.compat import breaking_changes
from shared.envelope import Trace
from shared.events import EVENT_MODELS
from tests.event_samples import records, sample_data, with_field

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
ADDED = "added_in_a_later_release"
ADDED_VALUE = {"note": "any JSON", "list": [1, "two"]}
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def published(name: str, *, form: str = "reader") -> dict[str, Any]:
    folder = SCHEMAS if form == "reader" else SCHEMAS / "producer"
    schema: dict[str, Any] = json.loads((folder / f"{name}.schema.json").read_text())
    return schema


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


def errors(schema: dict[str, Any], value: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(schema).iter_errors(value)]


def file_name(event_type: str) -> str:
    return f"{event_type}.v{EVENT_MODELS[event_type].schema_version}"


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_our_own_events_validate_against_both_published_forms(event_type: str) -> None:
    data = sample_data(EVENT_MODELS[event_type])
    assert errors(published(file_name(event_type)), data) == []
    assert errors(published(file_name(event_type), form="producer"), data) == []


def with_property(schema: dict[str, Any], title: str) -> dict[str, Any]:
    """``schema`` with a new optional property on its object titled ``title``."""
    grown = copy.deepcopy(schema)
    target = grown if grown.get("title") == title else grown["$defs"][title]
    target["properties"][ADDED] = {"type": "object"}
    return grown


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_a_new_optional_field_at_every_level_validates_against_the_published_reader_schema(
    event_type: str,
) -> None:
    model = EVENT_MODELS[event_type]
    data = sample_data(model)
    reader = published(file_name(event_type))
    producer = published(file_name(event_type), form="producer")
    places = list(records(data, reader))
    assert places[0] == ((), model.__name__)
    # every kind of object the event is made of is reached by the sample
    kinds = {name for name, d in reader.get("$defs", {}).items() if "properties" in d}
    assert kinds <= {title for _, title in places}, kinds - {title for _, title in places}
    for path, title in places:
        grown = with_field(data, path, ADDED, ADDED_VALUE)
        # compat calls the change compatible, and the published reader agrees
        assert breaking_changes(reader, with_property(reader, title)) == [], title
        assert errors(reader, grown) == [], (path, title)
        # the producer schema is closed: this release emits no such field
        assert errors(producer, grown), (path, title)


def test_a_new_nested_field_validates_against_the_asyncapi_message_too() -> None:
    document = json.loads(json.dumps(asyncapi_document()))
    for event_type, model in EVENT_MODELS.items():
        payload = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": f"#/components/schemas/{payload_name(model)}",
            "components": document["components"],
        }
        data = sample_data(model)
        record = json.loads(encode(envelope_of(event_type, data)))
        assert errors(payload, record) == [], event_type
        for path, title in records(data, published(file_name(event_type))):
            grown = {**record, "data": with_field(data, path, ADDED, ADDED_VALUE)}
            assert errors(payload, grown) == [], (event_type, path, title)


def envelope_of(event_type: str, data: dict[str, Any]) -> Any:
    event = EVENT_MODELS[event_type].model_validate(data)
    return wrap(
        event,
        event_id="e-1",
        service="scheduler",
        subject="s-1",
        trace=Trace(chainid="northwest-nmt", correlationid="i-1", locationid="beaverton"),
        time=datetime(2027, 3, 1, tzinfo=UTC),
    )


def test_a_new_envelope_attribute_validates_against_the_reader_envelope_only() -> None:
    record = json.loads(
        encode(envelope_of("visit.booked", sample_data(EVENT_MODELS["visit.booked"])))
    )
    assert errors(published("envelope"), record) == []
    assert errors(published("envelope", form="producer"), record) == []
    grown = {**record, "partitionkey": "c-1"}
    assert errors(published("envelope"), grown) == []
    assert errors(published("envelope", form="producer"), grown)


def test_every_published_file_declares_its_dialect_and_the_producer_ids_are_apart() -> None:
    files = sorted(SCHEMAS.glob("*.schema.json")) + sorted(SCHEMAS.glob("producer/*.schema.json"))
    for path in files:
        schema = json.loads(path.read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", path
    for event_type, model in EVENT_MODELS.items():
        name = file_name(event_type)
        version = model.schema_version
        assert published(name)["$id"] == f"urn:clinicflow:schema:{event_type}:v{version}"
        assert (
            published(name, form="producer")["$id"]
            == f"urn:clinicflow:producer-schema:{event_type}:v{version}"
        )
