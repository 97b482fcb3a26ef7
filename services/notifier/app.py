"""Composition root of the notifier."""

from __future__ import annotations

from fastapi import FastAPI

from services.notifier.api import router
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import handlers
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import NotifierSettings
from shared.topics import INTAKE, VISITS


def build_app(settings: NotifierSettings) -> FastAPI:
    async def dispatch(runtime: Runtime) -> None:
        await Dispatcher(runtime, settings).run()

    return build_service(
        service="notifier",
        settings=settings,
        description="Reminders and aftercare on the shared clock (clinic.notifications).",
        routers=[router],
        consumes=[INTAKE, VISITS],
        handlers=handlers,
        background=[dispatch],
    )
