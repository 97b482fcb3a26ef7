"""Composition root of the planner."""

from __future__ import annotations

from fastapi import FastAPI

from services.planner.api import router
from services.planner.handlers import handlers
from shared.service import build_service
from shared.settings import PlannerSettings
from shared.topics import INTAKE, VISITS


def build_app(settings: PlannerSettings) -> FastAPI:
    return build_service(
        service="planner",
        settings=settings,
        description=(
            "Turns intakes, assessments and visit outcomes into treatment plans and their "
            "revisions (clinic.plans)."
        ),
        routers=[router],
        consumes=[INTAKE, VISITS],
        handlers=handlers,
    )
