"""clinicflow schemas: a JSON Schema per public event type, named by its dataschema id."""

from __future__ import annotations

import json
from pathlib import Path

from shared.cli import main
from shared.envelope import schema_id
from shared.events import EVENT_MODELS


def test_schemas_command_writes_one_schema_per_event_type(tmp_path: Path) -> None:
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    for event_type, model in EVENT_MODELS.items():
        path = tmp_path / f"{event_type}.v{model.schema_version}.schema.json"
        schema = json.loads(path.read_text())
        assert schema["$id"] == schema_id(event_type, model.schema_version)
        assert set(model.model_fields) <= set(schema["properties"])
    envelope = json.loads((tmp_path / "envelope.schema.json").read_text())
    assert {"correlationid", "causationid", "chainid", "locationid"} <= set(envelope["properties"])
