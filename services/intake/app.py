"""Composition root of the intake service."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.api import router as intakes
from services.intake.clients_api import router as clients
from services.intake.sessions_api import router as sessions
from services.intake.submission import intake_outbox
from shared.outbox import relay
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import IntakeSettings


async def relay_outbox(runtime: Runtime) -> None:
    """Publish accepted events the broker did not take at once (shared/outbox.py)."""
    await relay(intake_outbox(runtime), runtime.publisher)


def build_app(settings: IntakeSettings) -> FastAPI:
    return build_service(
        service="intake",
        settings=settings,
        description=(
            "Intake sessions, safety screening, client lookup and assessments; publishes "
            "`intake.submitted` and `assessment.recorded` to `clinic.intake`."
        ),
        routers=[sessions, intakes, clients],
        background=[relay_outbox],
    )
