"""JSON Schema for every public event type, and the AsyncAPI document of the public
topics, for services that subscribe to them. ``schemas/`` in the repository holds
the published ones; ``tests/unit/test_schemas.py`` refuses a change to a published
schema that could break its readers unless the event's ``schema_version`` is raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.asyncapi import asyncapi_document
from shared.envelope import Envelope, schema_id
from shared.events import EVENT_MODELS


def event_schemas() -> dict[str, dict[str, object]]:
    """``{dataschema id: JSON Schema of data}`` plus the envelope itself."""
    schemas: dict[str, dict[str, object]] = {"envelope": Envelope.model_json_schema()}
    for event_type, model in EVENT_MODELS.items():
        schema = model.model_json_schema()
        schema["$id"] = schema_id(event_type, model.schema_version)
        schemas[f"{event_type}.v{model.schema_version}"] = schema
    return schemas


def write_schemas(out: Path) -> list[Path]:
    """One file per schema and ``asyncapi.json``. Files of older schema versions
    already in ``out`` stay: readers of an old version still need its schema."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in event_schemas().items():
        written.append(_write(out / f"{name}.schema.json", schema))
    written.append(_write(out / "asyncapi.json", asyncapi_document()))
    return written


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
