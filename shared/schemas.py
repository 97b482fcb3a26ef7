"""JSON Schema for every public event type, for services that subscribe to our topics."""

from __future__ import annotations

import json
from pathlib import Path

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
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in event_schemas().items():
        path = out / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
