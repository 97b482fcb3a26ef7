"""An EHR's FHIR R4 server as far as a subscriber sees it: ``POST [base]`` with a
``transaction`` Bundle, answered by a ``transaction-response``. Every Bundle is
validated with ``fhir.resources`` (R4B models, the R4 family for pydantic 2) before
anything in it is kept; a Bundle that does not validate is a 422 OperationOutcome and
changes nothing, as a real server answers it. It can be told to be down for a while
(503) to try a subscriber's retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from shared.infra import free_port
from tests.support import until

FHIR_JSON = "application/fhir+json"


@dataclass
class FhirServer:
    """What the server holds: the latest of each resource and how often it was PUT."""

    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    bundles: int = 0
    refused: list[str] = field(default_factory=list)
    down_for: int = 0  # answer this many more requests with 503

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {rid: r for (kind, rid), r in self.resources.items() if kind == resource_type}

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/fhir/r4")
        async def transaction(request: Request) -> JSONResponse:
            if self.down_for > 0:
                self.down_for -= 1
                return _outcome(503, "transient", "down for maintenance")
            try:
                bundle = Bundle.model_validate(json.loads(await request.body()))
            except (ValidationError, ValueError) as exc:
                self.refused.append(str(exc))
                return _outcome(422, "invalid", str(exc)[:2000])
            if bundle.type != "transaction":
                return _outcome(400, "invalid", f"a {bundle.type} Bundle is not a transaction")
            answers = []
            for entry in bundle.entry or []:
                if entry.resource is None:
                    return _outcome(400, "required", "an entry without its resource")
                resource = entry.resource.model_dump(mode="json", exclude_none=True)
                key = (resource["resourceType"], resource["id"])
                request_of = entry.request
                if request_of is None or (request_of.method, request_of.url) != (
                    "PUT",
                    "/".join(key),
                ):
                    return _outcome(400, "not-supported", f"only PUT {'/'.join(key)}")
                created = key not in self.resources
                self.resources[key] = resource
                self.versions[key] = self.versions.get(key, 0) + 1
                answers.append(
                    {
                        "response": {
                            "status": "201 Created" if created else "200 OK",
                            "location": f"{'/'.join(key)}/_history/{self.versions[key]}",
                        }
                    }
                )
            self.bundles += 1
            reply = {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}
            return JSONResponse(reply, media_type=FHIR_JSON)

        return app


def _outcome(status: int, code: str, diagnostics: str) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


@asynccontextmanager
async def fhir_server() -> AsyncIterator[tuple[FhirServer, str]]:
    """The server and its FHIR base URL, on a free port."""
    state = FhirServer()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            state.app(), host="127.0.0.1", port=port, log_level="warning", log_config=None
        )
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        await asyncio.sleep(0.05)
        return bool(server.started)

    await until(started)
    try:
        yield state, f"http://127.0.0.1:{port}/fhir/r4"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
