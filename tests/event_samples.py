"""A valid ``data`` of every event type, every optional field and nested object
filled in, built from the event's own JSON Schema and then passed through its
model: what our producer would put on the wire for such an event."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from shared.events import EventData

Path = tuple[str | int, ...]  # keys and indexes from the root of a JSON value

# a value for each string format the schemas use
FORMATS = {
    "date-time": "2027-03-08T16:00:00Z",
    "date": "2027-03-08",
    "duration": "PT10M",
    "email": "client@example.org",
}
# strings whose rules a schema does not say (a model validator checks them), by field
KNOWN = {
    "phone": "+15035550100",
    "language": "en",
    "timezone": "America/Los_Angeles",
    "start": "2027-03-08T16:00:00Z",
    "end": "2027-03-08T17:00:00Z",
    "previous_start": "2027-03-06T16:00:00Z",
    "start_date": "2027-03-08",
    "end_date": "2027-03-09",
    "ranges": "09:00-13:00",
    "hours": "09:00-13:00",
    "payload_encoding": "utf-8",
}


def sample_data(model: type[EventData]) -> dict[str, Any]:
    """``model``'s ``data`` with every field set, as ``to_data`` writes it."""
    schema = model.model_json_schema()
    built = _value(schema, schema, name="")
    return model.model_validate(built).to_data()


def _value(node: Mapping[str, Any], root: Mapping[str, Any], *, name: str) -> Any:
    if "$ref" in node:
        return _value(root["$defs"][node["$ref"].rsplit("/", 1)[-1]], root, name=name)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        return _value(options[0], root, name=name)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if "propertyNames" in node:  # a mapping with named keys: one entry
        key = node["propertyNames"]["enum"][0]
        return {key: _value(node["additionalProperties"], root, name=name)}
    if kind == "object" or "properties" in node:
        props: Mapping[str, Any] = node.get("properties", {})
        return {key: _value(sub, root, name=key) for key, sub in props.items()}
    if kind == "array":
        item = _value(node.get("items", {}), root, name=name)
        return [item] * max(1, node.get("minItems", 1))
    if kind == "integer":
        return max(node.get("minimum", 1), node.get("exclusiveMinimum", 0) + 1)
    if kind == "number":
        return float(max(node.get("minimum", 1), node.get("exclusiveMinimum", 0) + 1))
    if kind == "boolean":
        return False
    if kind == "string" and name in KNOWN:
        return KNOWN[name]
    if kind == "string":
        return FORMATS.get(node.get("format", ""), f"{name or 'value'}-1")
    return f"{name or 'value'}-1"


def records(
    value: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None
) -> Iterator[tuple[Path, str]]:
    """The path and schema title of every object in ``value`` that ``schema``
    describes by its properties (a record, where a newer release may add a
    field), the root first; mappings whose keys are values (a weekday's hours)
    are gone through, not counted."""
    yield from _records(value, schema, root or schema, ())


def _records(
    value: Any, node: Mapping[str, Any], root: Mapping[str, Any], path: Path
) -> Iterator[tuple[Path, str]]:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        node = options[0]
        while "$ref" in node:
            node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    if isinstance(value, dict) and "properties" in node:
        yield path, str(node.get("title"))
        for key, sub in value.items():
            yield from _records(sub, node["properties"].get(key, {}), root, (*path, key))
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), Mapping):
        for key, sub in value.items():
            yield from _records(sub, node["additionalProperties"], root, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _records(sub, node.get("items", {}), root, (*path, i))


def with_field(value: Any, path: Path, name: str, added: Any) -> Any:
    """A copy of ``value`` whose object at ``path`` has one more field."""
    if not path:
        assert isinstance(value, dict)
        return {**value, name: added}
    head, *rest = path
    if isinstance(value, dict):
        return {**value, head: with_field(value[head], tuple(rest), name, added)}
    copy = list(value)
    copy[int(head)] = with_field(copy[int(head)], tuple(rest), name, added)
    return copy
