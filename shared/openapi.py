"""A service's OpenAPI document as its front door behaves: who may call each operation,
and the errors the layers in front of the routes answer.

Each route declares what it raises itself (``shared.errors.errors``). What the layers
around it add is derived here from the facts those layers act on, so the document
cannot drift from what they do:

- a route that takes ``current_principal`` has its key checked by
  ``shared.guard.AuthFirst`` (``needs_key``): it requires the bearer key and may answer
  401 (no or unknown key), 429 (rate limit) and 503 (the limits live in Redis);
- a route opened by a message's signed link or by a staff key says so with
  ``KEY_OR_LINK``: no key, or the bearer key with the same three answers;
- every other route is public and is marked so (``security: []``);
- an operation that takes a body may be refused with 413 (``shared.body_limit``), and
  one whose body FastAPI decodes with 400 when it cannot (not UTF-8 JSON: before
  validating it; a route that reads its form by hand answers 422 for it);
- a 422 has the shape the services' handler writes (``ValidationErrorBody``), not
  FastAPI's default model, which is left out;
- the examples a route gives for its answers and body are shown as given: FastAPI
  drops every null from the document, and an example's nulls are part of the answer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from pydantic.json_schema import models_json_schema

from shared.errors import ErrorBody, ValidationErrorBody, errors
from shared.guard import needs_key, routes_of

BEARER: Final = "bearer"
REF: Final = "#/components/schemas/"
SECURITY_SCHEMES: Final[dict[str, Any]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key of the chain configuration (`api_keys`), sent as "
        "`Authorization: Bearer <key>`; its role and locations decide what it reaches",
    }
}
KEY: Final[list[dict[str, list[str]]]] = [{BEARER: []}]
# openapi_extra of a route that a message's signed link (``?sig=``) opens as well as a key
KEY_OR_LINK: Final[dict[str, Any]] = {"security": [{}, {BEARER: []}]}
KEY_CHECK_ERRORS: Final = (401, 429, 503)
FASTAPI_422: Final = ("HTTPValidationError", "ValidationError")


Operation = tuple[str, str]  # (method, path) as the document names them: ("get", "/v1/...")
Example = tuple[Operation, tuple[str, ...], Any]  # where in the operation, and the example


@dataclass(frozen=True)
class Routes:
    """What the document is completed from, taken from the app's routes."""

    keyed: frozenset[Operation]  # their key is checked by ``AuthFirst``
    decoded: frozenset[Operation]  # FastAPI decodes their body (a body parameter)
    examples: tuple[Example, ...]  # as the routes give them

    @classmethod
    def of(cls, app: FastAPI) -> Routes:
        routes = [
            route
            for route in routes_of(app.router.routes)
            if getattr(route, "include_in_schema", False)
        ]

        def operations(of: Iterable[Any]) -> frozenset[Operation]:
            return frozenset(
                (method.lower(), route.path_format) for route in of for method in route.methods
            )

        return cls(
            keyed=operations(r for r in routes if needs_key(r)),
            decoded=operations(r for r in routes if getattr(r, "body_field", None) is not None),
            examples=tuple(
                (operation, where, example)
                for route in routes
                for operation in operations([route])
                for where, example in _examples_of(route)
            ),
        )


def _examples_of(route: Any) -> Iterable[tuple[tuple[str, ...], Any]]:
    """(where in the operation, example) of each answer and body example ``route`` gives."""
    media_types: list[tuple[tuple[str, ...], dict[str, Any]]] = [
        (("responses", str(code)), response.get("content", {}))
        for code, response in (getattr(route, "responses", None) or {}).items()
    ]
    extra = getattr(route, "openapi_extra", None) or {}
    media_types.append((("requestBody",), extra.get("requestBody", {}).get("content", {})))
    for at, content in media_types:
        for media, body in content.items():
            for key in ("example", "examples"):
                if key in body:
                    yield (*at, "content", media, key), body[key]


def install(app: FastAPI) -> None:
    """Serve ``app``'s document completed as the module describes (/openapi.json, /docs)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = completed(FastAPI.openapi(app), Routes.of(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def completed(document: dict[str, Any], routes: Routes) -> dict[str, Any]:
    """``document`` (FastAPI's) with the security and the front door's answers."""
    doc = copy.deepcopy(document)
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    schemas = components.setdefault("schemas", {})
    for name, schema in error_schemas().items():
        schemas.setdefault(name, schema)
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if (method, path) in routes.keyed:
                operation["security"] = copy.deepcopy(KEY)
            operation.setdefault("security", [])
            _complete_responses(operation, decoded=(method, path) in routes.decoded)
    for (method, path), where, example in routes.examples:
        *parents, last = where
        node = doc["paths"][path][method]
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = jsonable_encoder(example)
    if REF + FASTAPI_422[0] not in json.dumps(doc):
        for name in FASTAPI_422:
            schemas.pop(name, None)
    return doc


def _complete_responses(operation: dict[str, Any], *, decoded: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    added: list[int] = []
    if {BEARER: []} in operation["security"]:
        added += KEY_CHECK_ERRORS
    if "requestBody" in operation:
        added.append(413)
    if decoded:
        added.append(400)
    if "422" in responses:
        _ours_422(responses["422"])
    for code in added:
        responses.setdefault(str(code), response_object(code))
    operation["responses"] = dict(sorted(responses.items(), key=lambda kv: _order(kv[0])))


def _ours_422(response: dict[str, Any]) -> None:
    """FastAPI's own 422 (added to any route with parameters) as the handler writes it."""
    media = response.get("content", {}).get("application/json", {})
    if media.get("schema") == {"$ref": REF + FASTAPI_422[0]}:
        media["schema"] = {"$ref": REF + ValidationErrorBody.__name__}
        response["description"] = response_object(422)["description"]


def example_answer(example: Any) -> dict[str, Any]:
    """A route's ``responses`` entry showing ``example`` as its JSON answer."""
    return {"content": {"application/json": {"example": example}}}


def example_body(example: Any) -> dict[str, Any]:
    """A route's ``openapi_extra`` showing ``example`` as its JSON request body."""
    return {"requestBody": {"content": {"application/json": {"example": example}}}}


def response_object(code: int) -> dict[str, Any]:
    """The OpenAPI response of an error ``code``: its meaning, model and headers."""
    declared = dict(errors(code)[code])
    model = declared.pop("model")
    return {**declared, "content": {"application/json": {"schema": {"$ref": REF + model.__name__}}}}


def error_schemas() -> dict[str, Any]:
    """The component schemas of the error model (``shared.errors``)."""
    _, top = models_json_schema(
        [(ErrorBody, "validation"), (ValidationErrorBody, "validation")],
        ref_template=REF + "{model}",
    )
    defs: dict[str, Any] = top["$defs"]
    return defs


def _order(code: str) -> tuple[int, str]:
    return (int(code), "") if code.isdigit() else (1000, code)
