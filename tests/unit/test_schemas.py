"""clinicflow schemas: a JSON Schema per public event type, named by its dataschema id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.asyncapi import asyncapi_document
from shared.cli import main
from shared.codec import encode, wrap
from shared.compat import breaking_changes, closed_objects
from shared.envelope import Trace, schema_id
from shared.events import EVENT_MODELS, VisitBooked
from shared.schemas import event_schemas, producer_schemas
from shared.topics import PUBLIC_TOPICS


def test_schemas_command_writes_one_schema_per_event_type(tmp_path: Path) -> None:
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    for event_type, model in EVENT_MODELS.items():
        path = tmp_path / f"{event_type}.v{model.schema_version}.schema.json"
        schema = json.loads(path.read_text())
        assert schema["$id"] == schema_id(event_type, model.schema_version)
        assert set(model.model_fields) <= set(schema["properties"])
        producer = json.loads((tmp_path / "producer" / path.name).read_text())
        assert producer["properties"] == schema["properties"]
    envelope = json.loads((tmp_path / "envelope.schema.json").read_text())
    assert {"correlationid", "causationid", "chainid", "locationid"} <= set(envelope["properties"])


# --- the published schemas (schemas/ in the repository) ----------------------------

PUBLISHED = Path(__file__).resolve().parents[2] / "schemas"


def _published(name: str, folder: Path = PUBLISHED) -> dict[str, Any] | None:
    path = folder / f"{name}.schema.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("name", sorted(event_schemas()))
def test_every_schema_is_published_and_no_published_one_changes_in_a_breaking_way(
    name: str,
) -> None:
    current = json.loads(json.dumps(event_schemas()[name]))
    published = _published(name)
    assert published is not None, f"{name} is not in schemas/: run `make schemas` and commit it"
    broken = breaking_changes(published, current)
    assert not broken, (
        f"{name} changed in a way that can break its readers: {broken}. Keep the old shape, "
        "or raise the event's schema_version (the old schema file stays for its readers)."
    )
    assert current == published, f"{name} changed compatibly: run `make schemas` and commit it"


@pytest.mark.parametrize("name", sorted(producer_schemas()))
def test_every_producer_schema_is_published_and_current(name: str) -> None:
    # what this release emits: it grows with every additive release, readers never use it
    current = json.loads(json.dumps(producer_schemas()[name]))
    assert current == _published(name, PUBLISHED / "producer"), (
        f"producer/{name} changed: run `make schemas` and commit it"
    )


def test_a_new_version_keeps_the_old_versions_schema_for_its_readers() -> None:
    for event_type, model in EVENT_MODELS.items():
        for version in range(1, model.schema_version):
            assert _published(f"{event_type}.v{version}") is not None, (event_type, version)


def test_the_published_asyncapi_document_is_current() -> None:
    published = json.loads((PUBLISHED / "asyncapi.json").read_text())
    current = json.loads(json.dumps(asyncapi_document()))
    published["info"].pop("version")
    current["info"].pop("version")
    assert current == published, "the AsyncAPI document changed: run `make schemas` and commit it"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_asyncapi_has_a_channel_per_topic_a_message_per_event_and_no_dangling_reference() -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    for spec in PUBLIC_TOPICS:
        channel = document["channels"][spec.name.replace(".", "_")]
        assert channel["address"] == spec.name
        names = {document["components"]["messages"][m]["name"] for m in channel["messages"]}
        assert names == set(spec.event_types)
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # KeyError: a reference to nothing


def _validator(document: dict[str, Any], event_type: str) -> jsonschema.Draft202012Validator:
    payload = document["components"]["messages"][event_type.replace(".", "_")]["payload"]
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **payload["schema"],
        "components": document["components"],
    }
    return jsonschema.Draft202012Validator(schema)


def test_real_events_validate_against_their_asyncapi_message_and_others_do_not() -> None:
    document = json.loads(json.dumps(asyncapi_document()))
    visit = VisitBooked(
        visit_id="v-1",
        plan_id="p-1",
        client_id="c-1",
        location_id="beaverton",
        therapist_id="t-ana",
        room=1,
        start=datetime(2027, 3, 15, 16, tzinfo=UTC),
        end=datetime(2027, 3, 15, 17, tzinfo=UTC),
        timezone="America/Los_Angeles",
        sequence=1,
        sessions_total=6,
    )
    envelope = wrap(
        visit,
        event_id="e-1",
        service="scheduler",
        subject="v-1",
        trace=Trace(chainid="northwest-nmt", correlationid="i-1"),
        time=datetime(2027, 3, 1, tzinfo=UTC),
    )
    record = json.loads(encode(envelope))
    _validator(document, "visit.booked").validate(record)
    with pytest.raises(jsonschema.ValidationError):
        _validator(document, "visit.cancelled").validate(record)  # another type
    broken = {**record, "data": {**record["data"], "room": 0}}
    with pytest.raises(jsonschema.ValidationError):
        _validator(document, "visit.booked").validate(broken)


def test_every_message_names_its_payload_dialect_headers_and_key() -> None:
    document = asyncapi_document()
    schemas = document["components"]["schemas"]
    keys = {t: spec.key for spec in PUBLIC_TOPICS for t in spec.event_types}
    for message_id, message in document["components"]["messages"].items():
        for part in ("payload", "headers"):
            # AsyncAPI 3 has no $schema at its root: the dialect is each schema's format
            assert message[part]["schemaFormat"] == "application/schema+json;version=draft-07"
            name = message[part]["schema"]["$ref"].removeprefix("#/components/schemas/")
            assert schemas[name]["title"] == name, (message_id, part)
        assert message["payload"]["schema"]["$ref"].endswith(f"/{message['title']}Event")
        header = schemas["CloudEventsKafkaHeaders"]["properties"]["content-type"]
        assert header["const"] == "application/cloudevents+json; charset=UTF-8"
        assert message["contentType"] == header["const"]
        key = message["bindings"]["kafka"]["key"]
        expected = {"client_id": "ClientId", "chain_id": "ChainId"}[keys[message["name"]]]
        if message["name"] == "record.deadlettered":
            expected = "FailedRecordKey"  # the failed record's own key, as it was
        assert (key["type"], key["title"]) == ("string", expected), message_id
        assert message["bindings"]["kafka"]["bindingVersion"] == "0.5.0"
    assert "$schema" not in document


def test_every_asyncapi_schema_is_titled_and_open() -> None:
    schemas = asyncapi_document()["components"]["schemas"]

    def untitled(node: Any, where: str) -> list[str]:
        if isinstance(node, list):
            return [u for i, item in enumerate(node) for u in untitled(item, f"{where}/{i}")]
        if not isinstance(node, dict):
            return []
        own = [where] if "enum" in node and "title" not in node else []
        if ("properties" in node or "allOf" in node) and "title" not in node:
            own.append(where)  # an object is a model to a generator: it needs a name
        nested = [
            u
            for key, value in node.items()
            if key not in ("enum", "const", "default", "examples")
            for u in untitled(value, f"{where}/{key}")
        ]
        return own + nested

    for name, schema in schemas.items():
        assert schema["title"], name
        assert [u for u in untitled(schema, name) if "/allOf/" not in u] == [], name
        assert closed_objects(schema) == [], name


LATER_KEYWORDS = {  # JSON Schema keywords that draft-07 does not have
    "$defs",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "prefixItems",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedItems",
    "unevaluatedProperties",
    "minContains",
    "maxContains",
}


def test_the_asyncapi_schemas_are_what_their_schema_format_says() -> None:
    """Declared draft-07 (the JSON Schema every AsyncAPI tool reads): so no keyword
    of a later dialect, and a reference has no siblings but annotations (draft-07
    ignores what stands beside a $ref)."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}/{i}")
        elif isinstance(node, dict):
            found.extend(f"{where}/{k}" for k in LATER_KEYWORDS & set(node))
            if "$ref" in node and set(node) - {"$ref", "default", "description", "title"}:
                found.append(f"{where}: beside $ref")
            for key, value in node.items():
                if key not in ("enum", "const", "default", "examples"):
                    walk(value, f"{where}/{key}")

    walk(asyncapi_document()["components"]["schemas"], "#/components/schemas")
    assert found == []
