"""JSON Schema for every public event type, and the AsyncAPI document of the public
topics, for services that subscribe to them. ``schemas/`` in the repository holds
the published ones; ``tests/unit/test_schemas.py`` refuses a change to a published
schema that could break its readers unless the event's ``schema_version`` is raised.

Every event type is published in two forms (``shared/schema_forms.py``):

- ``schemas/<type>.v<N>.schema.json``, the reader schema, ``$id`` the event's
  ``dataschema``: open to new properties at every level. It is the contract
  subscribers validate with. The files keep the names and ids they were first
  published under: other teams load them by ``dataschema``. They once closed
  their nested objects; opening them only lets through more documents (the
  ones with fields a newer release adds), so no event a reader accepted
  before is refused now, and it is what ``shared/compat.py`` already promised.
- ``schemas/producer/<type>.v<N>.schema.json``, the producer schema, ``$id``
  ``urn:clinicflow:producer-schema:<type>:v<N>``: every object closed to
  properties it does not list. It is exactly what this release emits; our
  tests validate our own events with it, so a field the published schema does
  not describe cannot slip out. It grows with every additive release, so it is
  no schema to validate someone else's events with.

The envelope is published the same way (``envelope.schema.json``, and
``producer/envelope.schema.json`` closed to extension attributes we do not set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared import schema_forms
from shared.asyncapi import asyncapi_document
from shared.envelope import Envelope, schema_id
from shared.events import EVENT_MODELS

PRODUCER_DIR = "producer"


def producer_schema_id(event_type: str, version: int) -> str:
    """The ``$id`` of an event type's producer schema (never a ``dataschema``)."""
    return f"urn:clinicflow:producer-schema:{event_type}:v{version}"


def event_schemas() -> dict[str, dict[str, object]]:
    """``{name: reader JSON Schema}``: each event type's ``data`` as
    ``<type>.v<N>`` (``$id`` its ``dataschema``), plus the ``envelope``."""
    return {name: schema_forms.reader(schema) for name, schema in _model_schemas(reader=True)}


def producer_schemas() -> dict[str, dict[str, object]]:
    """``{name: producer JSON Schema}``, named as in ``event_schemas``."""
    return {name: schema_forms.producer(schema) for name, schema in _model_schemas(reader=False)}


def _model_schemas(*, reader: bool) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = [("envelope", Envelope.model_json_schema())]
    for event_type, model in EVENT_MODELS.items():
        version = model.schema_version
        schema = model.model_json_schema()
        schema["$id"] = (
            schema_id(event_type, version) if reader else producer_schema_id(event_type, version)
        )
        found.append((f"{event_type}.v{version}", schema))
    return found


def write_schemas(out: Path) -> list[Path]:
    """The reader schemas in ``out``, the producer schemas in ``out/producer``,
    and ``asyncapi.json``. Files of older schema versions already there stay:
    readers of an old version still need its schema."""
    (out / PRODUCER_DIR).mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in event_schemas().items():
        written.append(_write(out / f"{name}.schema.json", schema))
    for name, schema in producer_schemas().items():
        written.append(_write(out / PRODUCER_DIR / f"{name}.schema.json", schema))
    written.append(_write(out / "asyncapi.json", asyncapi_document()))
    return written


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
