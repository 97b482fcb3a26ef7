"""Composition root of the planner."""

from __future__ import annotations

from fastapi import FastAPI

from services.planner import fhir_api
from services.planner.api import router
from services.planner.handlers import handlers
from services.planner.retirement import retirement_sweep
from services.planner.review_sweep import review_sweep
from shared.service import build_service
from shared.settings import PlannerSettings
from shared.topics import INTAKE, NOTIFICATIONS, VISITS


def build_app(settings: PlannerSettings) -> FastAPI:
    return build_service(
        service="planner",
        settings=settings,
        description=(
            "Turns intakes, assessments, visit outcomes and check-in answers into treatment "
            "plans and their revisions (clinic.plans); reviews plans whose review date passed; "
            "retires finished courses after the location's keep_finished_courses. "
            "Serves plans, pain readings, referrals and contraindications as FHIR R4 "
            "CarePlan, Observation, ServiceRequest and Condition (`/fhir/r4`)."
        ),
        routers=[router, fhir_api.router],
        consumes=[INTAKE, VISITS, NOTIFICATIONS],
        handlers=handlers,
        background=[review_sweep, retirement_sweep],
    )
