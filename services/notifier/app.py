"""Composition root of the notifier."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI

from services.notifier.api import router
from services.notifier.channels import channels_from
from services.notifier.courses import tend_courses
from services.notifier.dispatcher import Dispatcher
from services.notifier.handlers import handlers
from services.notifier.sms_replies_api import router as sms_replies_router
from services.notifier.waits import tend_waits
from shared.runtime import Runtime
from shared.service import build_service
from shared.settings import NotifierSettings
from shared.streams import Handler
from shared.topics import INTAKE, PLANS, VISITS


def build_app(settings: NotifierSettings) -> FastAPI:
    channels = channels_from(settings)
    configured = frozenset(channels)

    def wired(runtime: Runtime) -> Mapping[str, Handler]:
        return handlers(runtime, configured)  # type: ignore[arg-type]

    async def dispatch(runtime: Runtime) -> None:
        await Dispatcher(runtime, settings, channels).run()

    async def waits(runtime: Runtime) -> None:
        await tend_waits(runtime, configured)  # type: ignore[arg-type]

    return build_service(
        service="notifier",
        settings=settings,
        description="Reminders, aftercare, check-ins and other messages to clients "
        "(clinic.notifications).",
        routers=[router, sms_replies_router],
        consumes=[INTAKE, PLANS, VISITS],
        handlers=wired,
        background=[dispatch, waits, tend_courses],
    )
