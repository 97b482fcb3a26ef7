"""The five services' OpenAPI documents, as a client generator reads them: each is a
valid OpenAPI document (openapi-spec-validator); every operation requires the bearer
key unless it is listed here as public or opened by a signed link; the errors each
operation can get are declared with the JSON error model; the form endpoints declare
their forms; and every example in a document validates against its own schema."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI
from openapi_spec_validator import validate

from services.dashboard.app import build_app as build_dashboard
from services.intake.app import build_app as build_intake
from services.notifier.app import build_app as build_notifier
from services.planner.app import build_app as build_planner
from services.scheduler.app import build_app as build_scheduler
from shared.settings import (
    DashboardSettings,
    IntakeSettings,
    NotifierSettings,
    PlannerSettings,
    SchedulerSettings,
)

BUILDS: dict[str, Callable[[], FastAPI]] = {
    "intake": lambda: build_intake(IntakeSettings()),
    "planner": lambda: build_planner(PlannerSettings()),
    "scheduler": lambda: build_scheduler(SchedulerSettings()),
    "notifier": lambda: build_notifier(NotifierSettings()),
    "dashboard": lambda: build_dashboard(DashboardSettings()),
}
OPERATIONS = {"/healthz", "/readyz", "/metrics"}
# no key at all: probes, and what a client or the SMS provider posts with its own proof
PUBLIC: dict[str, set[tuple[str, str]]] = {
    "notifier": {
        ("post", "/v1/sms/inbound"),  # the provider's signature (X-Twilio-Signature)
        ("get", "/v1/checkins/{notification_id}"),  # the e-mail's signed link
        ("post", "/v1/checkins/{notification_id}/reply"),
    },
}
# a message's signed link (?sig=) or a staff key
KEY_OR_LINK: dict[str, set[tuple[str, str]]] = {
    "scheduler": {
        ("post", "/v1/visits/{visit_id}/confirm"),
        ("get", "/v1/visits/{visit_id}.ics"),
        ("get", "/v1/clients/{client_id}/calendar.ics"),
        ("get", "/v1/waitlist-offers/{offer_id}"),
        ("post", "/v1/waitlist-offers/{offer_id}/accept"),
        ("get", "/v1/waitlist-offers/{offer_id}/accept"),
        ("post", "/v1/waitlist-offers/{offer_id}/decline"),
        ("get", "/v1/waitlist-offers/{offer_id}/decline"),
        ("get", "/v1/visits/{visit_id}/manage"),
        ("post", "/v1/visits/{visit_id}/manage/confirm"),
        ("post", "/v1/visits/{visit_id}/manage/cancel"),
        ("post", "/v1/visits/{visit_id}/manage/reschedule"),
        ("get", "/v1/waitlist-offers/{offer_id}/manage"),
        ("post", "/v1/waitlist-offers/{offer_id}/manage/accept"),
        ("post", "/v1/waitlist-offers/{offer_id}/manage/decline"),
    },
}
BEARER = [{"bearer": []}]
FORMS = "application/x-www-form-urlencoded"
FHIR = "application/fhir+json"
ERROR_MODEL = "#/components/schemas/ErrorBody"
FIELD_ERRORS_MODEL = "#/components/schemas/ValidationErrorBody"


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return {name: build().openapi() for name, build in BUILDS.items()}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


@pytest.mark.parametrize("name", BUILDS)
def test_the_document_is_valid_openapi(documents: dict[str, dict[str, Any]], name: str) -> None:
    validate(documents[name])  # raises, naming the offending part


@pytest.mark.parametrize("name", BUILDS)
def test_every_operation_needs_the_bearer_key_unless_listed(
    documents: dict[str, dict[str, Any]], name: str
) -> None:
    document = documents[name]
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"],
        "type": "http",
        "scheme": "bearer",
    }
    public = PUBLIC.get(name, set()) | {("get", path) for path in OPERATIONS}
    by_link = KEY_OR_LINK.get(name, set())
    for method, path, operation in operations(document):
        where = (name, method, path)
        if (method, path) in public:
            assert operation["security"] == [], where
        elif (method, path) in by_link:
            assert operation["security"] == [{}, *BEARER], where
        else:
            assert operation["security"] == BEARER, where
    listed = public | by_link
    assert listed <= {(m, p) for m, p, _ in operations(document)}, "a listed route is gone"


@pytest.mark.parametrize("name", BUILDS)
def test_each_operation_declares_the_errors_in_front_of_it(
    documents: dict[str, dict[str, Any]], name: str
) -> None:
    for method, path, operation in operations(documents[name]):
        where, responses = (name, method, path), operation["responses"]
        if BEARER[0] in operation["security"]:  # the key check: no key, rate limit, Redis
            assert {"401", "429", "503"} <= set(responses), where
        if "requestBody" in operation:
            assert {"413", "422"} <= set(responses), where
        if path in OPERATIONS and path != "/readyz":
            assert set(responses) == {"200"}, where


@pytest.mark.parametrize("name", BUILDS)
def test_every_error_answer_has_the_error_model(
    documents: dict[str, dict[str, Any]], name: str
) -> None:
    document = documents[name]
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's default: not what is answered
    assert set(schemas["ValidationErrorBody"]["properties"]) == {"detail"}
    for method, path, operation in operations(document):
        for code, response in operation["responses"].items():
            if int(code) < 400 or path == "/readyz":
                continue
            where = (name, method, path, code)
            content = response["content"]
            # a page answers its own errors in HTML, the FHIR API with an OperationOutcome
            assert set(content) <= {"application/json", "text/html", FHIR}, where
            if "application/json" in content:
                expected = FIELD_ERRORS_MODEL if code == "422" else ERROR_MODEL
                assert content["application/json"]["schema"] == {"$ref": expected}, where
            if FHIR in content:
                assert "OperationOutcome" in json.dumps(content[FHIR]["schema"]), where
            if code in ("429", "503"):
                assert "Retry-After" in response["headers"], where


@pytest.mark.parametrize("name", BUILDS)
def test_readyz_declares_its_503_with_the_checks(
    documents: dict[str, dict[str, Any]], name: str
) -> None:
    document = documents[name]
    responses = document["paths"]["/readyz"]["get"]["responses"]
    for code in ("200", "503"):
        assert responses[code]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Readiness"
        }
    readiness = document["components"]["schemas"]["Readiness"]
    assert set(readiness["required"]) == {"ready", "service", "checks"}


def test_the_form_endpoints_declare_their_forms(documents: dict[str, dict[str, Any]]) -> None:
    notifier = documents["notifier"]["paths"]
    inbound = notifier["/v1/sms/inbound"]["post"]
    form = inbound["requestBody"]["content"][FORMS]["schema"]
    # the fields services/notifier/sms_inbound.py reads, as the provider names them
    assert {"From", "To", "Body", "MessageSid", "AccountSid"} <= set(form["properties"])
    assert set(form["required"]) == {"From", "To", "MessageSid"}
    assert form.get("additionalProperties") is not False  # the provider posts many more
    [signature] = [p for p in inbound["parameters"] if p["in"] == "header"]
    assert signature["name"] == "X-Twilio-Signature" and signature["required"]

    reply = notifier["/v1/checkins/{notification_id}/reply"]["post"]
    bodies = reply["requestBody"]["content"]
    assert set(bodies) == {"application/json", FORMS}
    for media in bodies.values():
        assert media["schema"]["required"] == ["pain"]
        assert (
            media["schema"]["properties"]["pain"] | {"minimum": 0, "maximum": 10}
            == (media["schema"]["properties"]["pain"])
        )
    assert "text/html" in reply["responses"]["409"]["content"]  # the form's answered page

    move = documents["scheduler"]["paths"]["/v1/visits/{visit_id}/manage/reschedule"]["post"]
    assert move["requestBody"]["content"][FORMS]["schema"]["required"] == ["start"]


# the main operations, and the answer each shows an example of
EXAMPLED: dict[str, list[tuple[str, str, str]]] = {
    "intake": [("post", "/v1/intakes", "202"), ("post", "/v1/intake-sessions", "201")],
    "planner": [("get", "/v1/clients/{client_id}/plan", "200")],
    "scheduler": [
        ("get", "/v1/clients/{client_id}/visits", "200"),
        ("get", "/v1/locations/{location_id}/calendar", "200"),
        ("post", "/v1/visits/{visit_id}/reschedule", "202"),
        ("post", "/v1/visits/{visit_id}/cancel", "202"),
        ("post", "/v1/visits/{visit_id}/complete", "202"),
    ],
    "notifier": [("get", "/v1/clients/{client_id}/notifications", "200")],
}


@pytest.mark.parametrize("name", EXAMPLED)
def test_the_main_operations_show_an_example_answer(
    documents: dict[str, dict[str, Any]], name: str
) -> None:
    for method, path, code in EXAMPLED[name]:
        media = documents[name]["paths"][path][method]["responses"][code]["content"]
        shown = media["application/json"]
        assert "example" in shown or shown.get("examples"), (name, method, path, code)


def examples_in(node: Any, at: str = "") -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every example the document shows: a media type's
    ``example`` and ``examples``, and a schema's own ``examples``."""
    if isinstance(node, dict):
        if isinstance(node.get("schema"), dict):  # a media type (or a parameter)
            if "example" in node:
                yield at, node["schema"], node["example"]
            for key, shown in (node.get("examples") or {}).items():
                yield f"{at}/examples/{key}", node["schema"], shown["value"]
        if isinstance(node.get("examples"), list):  # a schema
            bare = {k: v for k, v in node.items() if k != "examples"}
            for n, shown in enumerate(node["examples"]):
                yield f"{at}/examples/{n}", bare, shown
        for key, child in node.items():
            yield from examples_in(child, f"{at}/{key}")
    elif isinstance(node, list):
        for n, child in enumerate(node):
            yield from examples_in(child, f"{at}/{n}")


def example_failures(document: dict[str, Any]) -> list[str]:
    """Every example of ``document`` that does not validate against its schema."""
    failures = []
    for where, schema, example in examples_in(document):
        # the document's components beside the schema, for its references to resolve
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": document.get("components", {})},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        failures += [
            f"{where} {list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(example)
        ]
    return failures


@pytest.mark.parametrize("name", BUILDS)
def test_every_example_validates_against_its_schema(
    documents: dict[str, dict[str, Any]], name: str
) -> None:
    assert list(examples_in(documents[name])), "the document shows no example"
    failures = example_failures(documents[name])
    assert failures == [], "\n".join(failures)


def test_an_example_that_breaks_its_schema_is_found() -> None:
    media = {"schema": {"$ref": "#/components/schemas/A"}, "example": {"m": "1"}}
    schema = {"type": "object", "required": ["n"], "examples": [{"n": 1}, {"n": "one"}]}
    schema["properties"] = {"n": {"type": "integer"}}
    document = {
        "components": {"schemas": {"A": schema}},
        "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": media}}}}}},
    }
    failures = sorted(example_failures(document))
    assert len(failures) == 2, failures
    assert failures[0].startswith("/components/schemas/A/examples/1 ['n']"), failures
    assert failures[1].startswith("/paths//x/get/responses/200/content/application/json "), failures
