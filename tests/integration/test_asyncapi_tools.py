"""schemas/asyncapi.json as AsyncAPI's own tools read it: valid against the
official JSON Schema of AsyncAPI 3.0.0 (``@asyncapi/specs``), parsed without
errors or warnings by ``@asyncapi/parser``, and every model ``@asyncapi/modelina``
generates from it named after our schemas, none ``AnonymousSchema_N``.

The npm packages are pinned by tests/asyncapi/package-lock.json and installed
once per lock file under .cache/ (ignored by git)."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from shared.events import EVENT_MODELS

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tests" / "asyncapi"
CACHE = ROOT / ".cache" / "asyncapi-tools"
DOCUMENT = ROOT / "schemas" / "asyncapi.json"
PARSER_ERROR, PARSER_WARNING = 0, 1  # the parser's diagnostic severities


@pytest.fixture(scope="module")
def tools() -> Path:
    """The install directory (node_modules inside) of the pinned tools."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed: the AsyncAPI tools need them")
    lock = (TOOLS / "package-lock.json").read_bytes()
    target = CACHE / hashlib.sha256(lock).hexdigest()[:16]
    if not (target / "node_modules" / "@asyncapi" / "modelina" / "package.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(TOOLS / name, target / name)
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=target,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return target


def published() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return document


def spec_validator(tools: Path) -> jsonschema.Draft7Validator:
    """The official JSON Schema of AsyncAPI 3.0.0, with the definitions it refers to."""
    spec = json.loads((tools / "node_modules/@asyncapi/specs/schemas/3.0.0.json").read_text())
    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(schema, default_specification=DRAFT7))
        for uri, schema in spec["definitions"].items()
    )
    return jsonschema.Draft7Validator(spec, registry=registry)


def test_the_document_is_valid_against_the_official_asyncapi_3_schema(tools: Path) -> None:
    validator = spec_validator(tools)
    document = published()
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)] == []
    # the official schema does check: a root $schema is not an AsyncAPI field, which
    # is why the dialect is on each message's schemaFormat instead
    assert list(
        validator.iter_errors({**document, "$schema": "http://json-schema.org/draft-07/schema#"})
    )
    broken = copy.deepcopy(document)
    broken["components"]["messages"]["visit_booked"]["bindings"]["kafka"]["bindingVersion"] = "9"
    assert list(validator.iter_errors(broken))


def run_tools(tools: Path, document: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """What the parser and modelina make of ``document`` (tests/asyncapi/check_document.mjs)."""
    path = workdir / "asyncapi.json"
    path.write_text(json.dumps(document))
    done = subprocess.run(
        ["node", str(TOOLS / "check_document.mjs"), str(tools), str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.fixture(scope="module")
def report(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_tools(tools, published(), tmp_path_factory.mktemp("asyncapi"))


def test_the_parser_reads_it_without_errors_or_warnings(report: dict[str, Any]) -> None:
    serious = [d for d in report["diagnostics"] if d["severity"] in (PARSER_ERROR, PARSER_WARNING)]
    assert serious == []
    assert set(report["models"]) == {"typescript", "python"}


@pytest.mark.parametrize("language", ["typescript", "python"])
def test_modelina_names_every_model_after_our_schemas(
    report: dict[str, Any], language: str
) -> None:
    models = {m["name"]: m["code"] for m in report["models"][language]}
    assert [name for name in models if "Anonymous" in name] == []
    for model in EVENT_MODELS.values():
        assert f"{model.__name__}Event" in models, model.__name__
        assert model.__name__ in models, model.__name__
    assert {"Region", "Side", "Quality", "Weekday", "TimeOfDay"} <= set(models)


def test_an_event_model_has_its_own_data_type(report: dict[str, Any]) -> None:
    models = {m["name"]: m["code"] for m in report["models"]["typescript"]}
    assert re.search(r"_data: VisitBooked;", models["VisitBookedEvent"])
    assert re.search(
        r"_dataschema: 'urn:clinicflow:schema:visit.booked:v1'", models["VisitBookedEvent"]
    )


def test_an_inline_payload_gets_an_anonymous_name(tools: Path, tmp_path: Path) -> None:
    """The check can fail: a payload written inline, untitled, as the document had
    it before, comes out of modelina as ``AnonymousSchema_N``."""
    document = published()
    message = document["components"]["messages"]["visit_booked"]
    named = message["payload"]["schema"]["$ref"].rsplit("/", 1)[-1]
    inline = {k: v for k, v in document["components"]["schemas"][named].items() if k != "title"}
    message["payload"] = inline
    models = run_tools(tools, document, tmp_path)["models"]["typescript"]
    assert any(m["name"].startswith("AnonymousSchema") for m in models)
