"""An AsyncAPI 3 document of every public topic: what other teams subscribe to.

One channel per topic (its address is the topic name; its key the client id, or
the chain id on ``clinic.directory``),
one message per event type, and an operation saying clinicflow sends them.
Each message's payload is the CloudEvents envelope with ``type`` fixed to the
event type and ``data`` the event's own schema; every schema lives once under
``components/schemas``, so the document has no duplicate definitions."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.envelope import Envelope, schema_id
from shared.events import EVENT_MODELS
from shared.topics import PUBLIC_TOPICS, TopicSpec

REF = "#/components/schemas/{model}"


def _id(name: str) -> str:
    """AsyncAPI ids allow letters, digits, ``_`` and ``-``: ``visit.booked`` -> ``visit_booked``."""
    return name.replace(".", "_")


def _release() -> str:
    try:
        return version("clinicflow")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0.0.0"


def asyncapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [Envelope, *EVENT_MODELS.values()]
    keys, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    envelope_ref = keys[(Envelope, "validation")]["$ref"]
    keyed_by = {t: spec.key for spec in PUBLIC_TOPICS for t in spec.event_types}
    messages: dict[str, Any] = {}
    for event_type, model in EVENT_MODELS.items():
        data_ref = keys[(model, "validation")]["$ref"]
        messages[_id(event_type)] = {
            "name": event_type,
            "title": model.__name__,
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {"type": "object"},
            "payload": {
                "allOf": [
                    {"$ref": envelope_ref},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "dataschema": {"const": schema_id(event_type, model.schema_version)},
                            "data": {"$ref": data_ref},
                        },
                        "required": ["type", "data"],
                    },
                ]
            },
            "bindings": {"kafka": {"key": {"type": "string", "description": keyed_by[event_type]}}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "clinicflow events",
            "version": _release(),
            "description": (
                "The public topics of clinicflow. Every record value is a CloudEvents 1.0 "
                "structured JSON envelope (extension attributes chainid, locationid, "
                "correlationid, causationid); the record key is the client id, so one "
                "client's events stay in order, except on clinic.directory, keyed by the "
                "chain id (the directory belongs to the chain; one key keeps its changes "
                "in order), and clinic.deadletter, which keeps the failed record's key. "
                "Event ids derive from their cause: a consumer skips an id it has seen."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {_id(spec.name): _channel(spec) for spec in PUBLIC_TOPICS},
        "operations": {
            f"{_id(spec.name)}_send": {
                "action": "send",
                "summary": f"clinicflow publishes to {spec.name}",
                "channel": {"$ref": f"#/channels/{_id(spec.name)}"},
                "messages": [
                    {"$ref": f"#/channels/{_id(spec.name)}/messages/{_id(t)}"}
                    for t in spec.event_types
                ],
            }
            for spec in PUBLIC_TOPICS
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def _channel(spec: TopicSpec) -> dict[str, Any]:
    return {
        "address": spec.name,
        "description": spec.description,
        "messages": {_id(t): {"$ref": f"#/components/messages/{_id(t)}"} for t in spec.event_types},
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "topicConfiguration": {
                    "retention.ms": spec.retention_ms,
                    "cleanup.policy": [spec.cleanup_policy],
                },
            }
        },
    }
