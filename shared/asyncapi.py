"""An AsyncAPI 3 document of every public topic: what other teams subscribe to.

One channel per topic (its address is the topic name), one message per event
type, and an operation saying clinicflow sends them. Each message's payload is
``<Model>Event`` (the CloudEvents envelope with ``type`` fixed to the event type
and ``data`` the event's own schema), its headers the structured-mode
``content-type`` of the CloudEvents Kafka binding, and its Kafka binding the
record key: the client id, or the chain id on ``clinic.directory``.

Every schema lives once under ``components/schemas``, named and titled, so
generators such as modelina name their models after it instead of
``AnonymousSchema_N``. The schemas are the reader form (``shared/schema_forms.py``):
open to new properties at every level, as the published files are.

AsyncAPI 3 allows no ``$schema`` at the root of its document (only its own
fields and ``x-`` extensions), so the dialect is declared where the format
has a place for it: every payload and headers schema is a Multi Format Schema
Object with ``schemaFormat`` JSON Schema draft-07, the JSON Schema every
AsyncAPI tool must read. The schemas use only draft-07 keywords; the files in
``schemas/`` declare 2020-12, the dialect pydantic writes, and say the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared import vocabulary
from shared.binding import CONTENT_TYPE_HEADER, STRUCTURED_CONTENT_TYPE
from shared.envelope import Envelope, schema_id
from shared.events import EVENT_MODELS, EventData
from shared.schema_forms import DATA_KEYWORDS, opened
from shared.topics import DEADLETTER, PUBLIC_TOPICS, TopicSpec

REF = "#/components/schemas/{model}"
SCHEMA_FORMAT = "application/schema+json;version=draft-07"
BINDING_VERSION = "0.5.0"
HEADERS = "CloudEventsKafkaHeaders"

KEYS: dict[str, dict[str, str]] = {
    "client_id": {
        "title": "ClientId",
        "description": "The record key: the client id, so one client's events stay in order.",
    },
    "chain_id": {
        "title": "ChainId",
        "description": "The record key: the chain id. The directory belongs to the chain; "
        "one key keeps its changes in order.",
    },
}
DEADLETTER_KEY = {
    "title": "FailedRecordKey",
    "description": "The record key: the key of the record that failed, as it was (the "
    "client id; the chain id for a record from clinic.directory).",
}


def _vocabulary() -> dict[frozenset[str], str]:
    """``{codes: name}`` of every code list in ``shared/vocabulary.py``."""
    return {
        frozenset(get_args(alias)): name
        for name, alias in vars(vocabulary).items()
        if get_origin(alias) is Literal
    }


_VOCABULARY = _vocabulary()


def _titled(node: Any, names: Mapping[frozenset[str], str]) -> Any:
    """``node`` with every untitled list of codes titled by its vocabulary name
    (the codes of ``Literal`` lists inside arrays and optional values come out of
    pydantic without one, and generators name such a schema ``AnonymousSchema_N``)."""
    if isinstance(node, list):
        return [_titled(item, names) for item in node]
    if not isinstance(node, Mapping):
        return node
    out = {k: v if k in DATA_KEYWORDS else _titled(v, names) for k, v in node.items()}
    codes = node.get("enum")
    if isinstance(codes, list) and "title" not in node:
        name = names.get(frozenset(map(str, codes)))
        if name is not None:
            out["title"] = name
    return out


def _id(name: str) -> str:
    """AsyncAPI ids allow letters, digits, ``_`` and ``-``: ``visit.booked`` -> ``visit_booked``."""
    return name.replace(".", "_")


def _release() -> str:
    try:
        return version("clinicflow")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0.0.0"


def _schema(name: str) -> dict[str, Any]:
    """A Multi Format Schema Object naming its dialect, referring to a component."""
    return {"schemaFormat": SCHEMA_FORMAT, "schema": {"$ref": REF.format(model=name)}}


def payload_name(model: type[EventData]) -> str:
    """The component name (and title) of an event type's whole record value."""
    return f"{model.__name__}Event"


def asyncapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [Envelope, *EVENT_MODELS.values()]
    keys, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = {
        name: _titled(opened(s), _VOCABULARY) for name, s in top.get("$defs", {}).items()
    }
    schemas[HEADERS] = _headers_schema()
    envelope_ref = keys[(Envelope, "validation")]["$ref"]
    topic_of = {t: spec for spec in PUBLIC_TOPICS for t in spec.event_types}
    messages: dict[str, Any] = {}
    for event_type, model in EVENT_MODELS.items():
        data_ref = keys[(model, "validation")]["$ref"]
        dataschema = schema_id(event_type, model.schema_version)
        name = payload_name(model)
        schemas[name] = {
            "title": name,
            "description": f"A {event_type} event (data schema {dataschema}) in its "
            "CloudEvents envelope: the record value.",
            # the event's own part first: generators that merge allOf keep the first
            # schema of a property, and data is the event's, not the envelope's object
            "allOf": [
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event_type},
                        "dataschema": {"const": dataschema},
                        "data": {"$ref": data_ref},
                    },
                    "required": ["type", "data"],
                },
                {"$ref": envelope_ref},
            ],
        }
        messages[_id(event_type)] = {
            "name": event_type,
            "title": model.__name__,
            "summary": (model.__doc__ or event_type).strip().splitlines()[0],
            "contentType": STRUCTURED_CONTENT_TYPE,
            "headers": _schema(HEADERS),
            "payload": _schema(name),
            "bindings": {"kafka": _message_binding(topic_of[event_type])},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "clinicflow events",
            "version": _release(),
            "description": (
                "The public topics of clinicflow. Every record value is a CloudEvents 1.0 "
                "structured JSON envelope (extension attributes chainid, locationid, "
                "correlationid, causationid), and every record carries the header "
                f"{CONTENT_TYPE_HEADER}: {STRUCTURED_CONTENT_TYPE} (CloudEvents Kafka "
                "binding, structured mode; records written before it was added lack it). "
                "The record key is the client id, so one "
                "client's events stay in order, except on clinic.directory, keyed by the "
                "chain id (the directory belongs to the chain; one key keeps its changes "
                "in order), and clinic.deadletter, which keeps the failed record's key. "
                "Event ids derive from their cause: a consumer skips an id it has seen. "
                "The schemas are open to new properties at every level: a new field is "
                "an additive change, within the same schema version."
            ),
        },
        "defaultContentType": STRUCTURED_CONTENT_TYPE,
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


def _headers_schema() -> dict[str, Any]:
    return {
        "title": HEADERS,
        "description": "The Kafka record headers clinicflow sets. The content-type header "
        "says the value is a whole CloudEvent in the JSON format (structured mode), "
        "which is what a CloudEvents SDK's Kafka binding reads it as. Records "
        "written before the header was added lack it: read their value as the same "
        "structured JSON.",
        "type": "object",
        "properties": {
            CONTENT_TYPE_HEADER: {
                "title": "ContentType",
                "type": "string",
                "const": STRUCTURED_CONTENT_TYPE,
            }
        },
    }


def _message_binding(spec: TopicSpec) -> dict[str, Any]:
    key = DEADLETTER_KEY if spec is DEADLETTER else KEYS[spec.key]
    return {"key": {"type": "string", **key}, "bindingVersion": BINDING_VERSION}


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
                "bindingVersion": BINDING_VERSION,
            }
        },
    }
