"""Composition root of the intake service."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.api import router as intakes
from services.intake.clients_api import router as clients
from services.intake.sessions_api import router as sessions
from shared.service import build_service
from shared.settings import IntakeSettings


def build_app(settings: IntakeSettings) -> FastAPI:
    return build_service(
        service="intake",
        settings=settings,
        description=(
            "Intake sessions, safety screening, client lookup and assessments; publishes "
            "`intake.submitted` and `assessment.recorded` to `clinic.intake`."
        ),
        routers=[sessions, intakes, clients],
    )
