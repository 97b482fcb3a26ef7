"""The two forms every event schema is published in (pure).

Pydantic writes ``additionalProperties: false`` for the parts of a document we
own (``Part``: a misspelt key is an error on the way in). That strictness suits
our own producers and nobody else: ``shared/compat.py`` calls a new field,
nested or not, a compatible change, so a subscriber validating with a closed
schema would reject our next additive release.

- ``reader``: every object open to properties it does not list, at every
  level. It is the contract: what a subscriber validates with, and what
  ``compat`` reasons about.
- ``producer``: every object that lists its properties closed to others. It
  is what clinicflow itself emits at this release, no more; it changes with
  every additive release, so only our own tests validate with it.

Both declare their JSON Schema dialect (2020-12, what pydantic writes).
Maps (``additionalProperties`` holding a schema) and open data (``true``) are
left as they are in both forms: their keys are values, not field names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# keywords whose values are JSON data, not schemas: left untouched
DATA_KEYWORDS = frozenset({"const", "default", "enum", "examples"})
# keywords whose values map names to schemas
_NAMED = frozenset({"properties", "patternProperties", "$defs"})

Schema = Mapping[str, Any]


def reader(schema: Schema) -> dict[str, Any]:
    """``schema`` open to additions at every level, with its dialect declared."""
    return {"$schema": JSON_SCHEMA_DIALECT, **opened(schema)}


def producer(schema: Schema) -> dict[str, Any]:
    """``schema`` closed at every object that lists its properties, with its
    dialect declared."""
    closed: dict[str, Any] = _map(schema, _close)
    return {"$schema": JSON_SCHEMA_DIALECT, **closed}


def opened(schema: Schema) -> dict[str, Any]:
    """``schema`` open to additions at every level (no dialect: for schemas
    embedded in another document, such as the AsyncAPI components)."""
    result: dict[str, Any] = _map(schema, _open)
    return result


def _open(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if not (k == "additionalProperties" and v is False)}


def _close(node: dict[str, Any]) -> dict[str, Any]:
    if "properties" in node and "additionalProperties" not in node:
        return {**node, "additionalProperties": False}
    return node


def _map(node: Any, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """``change`` applied to every schema object in ``node``, innermost first.
    A ``properties`` mapping is not a schema itself (a field may be called
    ``additionalProperties``), and defaults, examples and constants are data."""
    if isinstance(node, list):
        return [_map(item, change) for item in node]
    if not isinstance(node, Mapping):
        return node
    mapped: dict[str, Any] = {}
    for key, value in node.items():
        if key in DATA_KEYWORDS:
            mapped[key] = value
        elif key in _NAMED and isinstance(value, Mapping):
            mapped[key] = {name: _map(sub, change) for name, sub in value.items()}
        else:
            mapped[key] = _map(value, change)
    return change(mapped)
