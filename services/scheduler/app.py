"""Composition root of the scheduler."""

from __future__ import annotations

from fastapi import FastAPI

from services.scheduler import calendar_api, directory_api, fhir_api, pages_api, waitlist_api
from services.scheduler.api import router
from services.scheduler.course_sweep import course_sweep
from services.scheduler.handlers import handlers
from services.scheduler.offer_round import offer_rounds, waitlist_sizes
from services.scheduler.outbox import relay
from services.scheduler.settling import settle_records
from shared.service import build_service
from shared.settings import SchedulerSettings
from shared.topics import INTAKE, NOTIFICATIONS, PLANS, VISITS


def build_app(settings: SchedulerSettings) -> FastAPI:
    return build_service(
        service="scheduler",
        settings=settings,
        description="Books the visits of treatment plans (clinic.visits) and makes up the "
        "ones cancelled or missed; follows client merges (clinic.intake); confirms the "
        "visits clients confirm by text (reply.received on clinic.notifications); keeps "
        "the staff directory (hours per location, time off, closures, turnover), whose "
        "changes re-plan what they touch and go out on clinic.directory; keeps client "
        "names from clinic.intake for the front desk's views; serves visits as FHIR R4 "
        "Appointments (`/fhir/r4/Appointment`).",
        routers=[
            router,
            calendar_api.router,
            waitlist_api.router,
            pages_api.router,
            directory_api.router,
            fhir_api.router,
        ],
        consumes=[PLANS, INTAKE, VISITS, NOTIFICATIONS],
        handlers=handlers,
        background=[relay, offer_rounds, waitlist_sizes, settle_records, course_sweep],
    )
