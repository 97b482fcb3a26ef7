"""Whether a new version of an event's JSON Schema still suits the services that
read the old one (pure).

Other teams' consumers were written against a published schema. A change keeps
them working when every event valid under the new schema is also something
they understood; it breaks them when a new event may:

- lack a field they had (a property removed, or no longer required);
- carry a value of another type or format there (``string`` becoming
  ``integer`` or ``null``, a ``date-time`` becoming a ``date``);
- carry a value outside what they knew (a new enum value, a looser minimum or
  maximum).

Adding properties, optional or required, at the top or in a nested object,
keeps them working: consumers ignore fields they do not know. That holds only
while the schema they validate with is open: an object closed to properties it
does not list (``additionalProperties: false``, ``unevaluatedProperties:
false``) refuses the next additive release, so a published reader schema that
closes one is itself a breaking change (``closed_objects``). A breaking change
needs a new ``schema_version``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.schema_forms import DATA_KEYWORDS

Schema = Mapping[str, Any]

_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems")
_CLOSING = ("additionalProperties", "unevaluatedProperties")
_NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions"})


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """What about ``new`` can break a reader of ``old``, or a reader who takes
    ``new`` up, on this release or the next additive one; empty when nothing can."""
    changed = _compare(old, new, old_root=old, new_root=new, path="data")
    return changed + [f"{where}: closed to new properties" for where in closed_objects(new)]


def closed_objects(schema: Schema) -> list[str]:
    """Where ``schema`` refuses properties it does not list, as JSON pointers
    (``#/$defs/Place``); empty for a schema open at every level. A mapping of
    names to schemas (``properties``, ``$defs``) is walked, not judged, and
    defaults, examples and constants are data."""
    return _closed(schema, "#")


def _closed(node: Any, where: str) -> list[str]:
    if isinstance(node, list):
        return [found for i, item in enumerate(node) for found in _closed(item, f"{where}/{i}")]
    if not isinstance(node, Mapping):
        return []
    found = [where] if any(node.get(k) is False for k in _CLOSING) else []
    for key, value in node.items():
        if key in DATA_KEYWORDS:
            continue
        if key in _NAMED and isinstance(value, Mapping):
            for name, sub in value.items():
                found += _closed(sub, f"{where}/{key}/{name}")
        else:
            found += _closed(value, f"{where}/{key}")
    return found


def _compare(
    old: Schema, new: Schema, *, old_root: Schema, new_root: Schema, path: str
) -> list[str]:
    old, new = _resolve(old, old_root), _resolve(new, new_root)
    problems: list[str] = []
    widened = _kinds(new, new_root) - _kinds(old, old_root)
    if widened and _kinds(old, old_root):
        problems.append(f"{path}: may now be {', '.join(sorted(widened))}")
    if "format" in old and new.get("format") != old["format"]:
        problems.append(f"{path}: format {old['format']} became {new.get('format')}")
    known = _values(old)
    if (known and _values(new) - known) or (known and not _values(new)):
        added = sorted(map(str, _values(new) - known)) or ["any value"]
        problems.append(f"{path}: may now be {', '.join(added)}")
    for bound in (*_LOWER, *_UPPER):
        if bound not in old:
            continue
        now = new.get(bound)
        looser = now is None or (now < old[bound] if bound in _LOWER else now > old[bound])
        if looser:
            problems.append(f"{path}: {bound} {old[bound]} loosened to {now}")
    old_props: Mapping[str, Schema] = old.get("properties", {})
    new_props: Mapping[str, Schema] = new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{path}.{name}: removed")
            continue
        problems += _compare(
            old_prop, new_props[name], old_root=old_root, new_root=new_root, path=f"{path}.{name}"
        )
    for name in set(old.get("required", ())) - set(new.get("required", ())):
        if name in new_props:
            problems.append(f"{path}.{name}: no longer required")
    if "items" in old and "items" in new:
        problems += _compare(
            old["items"], new["items"], old_root=old_root, new_root=new_root, path=f"{path}[]"
        )
    if "anyOf" in old or "anyOf" in new:  # an optional value: compare what it is when set
        old_set, new_set = _branches(old, old_root), _branches(new, new_root)
        if len(old_set) == 1 and len(new_set) == 1:
            problems += _compare(
                old_set[0], new_set[0], old_root=old_root, new_root=new_root, path=path
            )
    return problems


def _resolve(node: Schema, root: Schema) -> Schema:
    while "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        node = root["$defs"][name]
    return node


def _branches(node: Schema, root: Schema) -> list[Schema]:
    """The non-null alternatives of an ``anyOf`` (an optional field's value)."""
    options = [_resolve(o, root) for o in node.get("anyOf", [node])]
    return [o for o in options if o.get("type") != "null"]


def _kinds(node: Schema, root: Schema) -> set[str]:
    """The JSON types a value may have (empty: unconstrained)."""
    node = _resolve(node, root)
    if "anyOf" in node:
        return set().union(*(_kinds(option, root) for option in node["anyOf"]))
    declared = node.get("type")
    if isinstance(declared, list):
        return set(map(str, declared))
    if declared is not None:
        return {str(declared)}
    if "properties" in node:
        return {"object"}
    return {_json_type(v) for v in _values(node)}


def _values(node: Schema) -> set[Any]:
    if "enum" in node:
        return {_hashable(v) for v in node["enum"]}
    if "const" in node:
        return {_hashable(node["const"])}
    return set()


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"
