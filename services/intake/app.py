"""Composition root of the intake service."""

from __future__ import annotations

import asyncio
import gc

from fastapi import FastAPI

from services.intake.api import router as intakes
from services.intake.clients_api import router as clients
from services.intake.fhir_api import router as fhir
from services.intake.medical_checks_api import router as medical_checks
from services.intake.sessions_api import router as sessions
from services.intake.submission import intake_outbox
from shared.outbox import relay
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import IntakeSettings


async def relay_outbox(runtime: Runtime) -> None:
    """Publish accepted events the broker did not take at once (shared/outbox.py)."""
    await relay(intake_outbox(runtime), runtime.publisher)


async def freeze_startup_heap(runtime: Runtime) -> None:
    """While the service runs, keep what start-up built (modules, models, routes)
    out of the garbage collector's full passes, which would otherwise walk all of it
    again and again while requests wait; given back when it stops."""
    gc.collect()
    gc.freeze()
    try:
        await asyncio.Event().wait()  # until the service stops
    finally:
        gc.unfreeze()


def build_app(settings: IntakeSettings) -> FastAPI:
    return build_service(
        service="intake",
        settings=settings,
        description=(
            "Intake sessions, safety screening, client lookup, assessments and the doctor's "
            "checks red flags ask for; publishes `intake.submitted`, `assessment.recorded` "
            "and `medical_check.recorded` to `clinic.intake`. Serves the client as a FHIR R4 "
            "Patient (`/fhir/r4/Patient/{id}`)."
        ),
        routers=[sessions, intakes, clients, medical_checks, fhir],
        background=[freeze_startup_heap, relay_outbox],
    )
