"""Composition root of the intake service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from services.intake.api import router
from shared.service import build_service
from shared.settings import IntakeSettings


def build_app(settings: IntakeSettings) -> FastAPI:
    app = build_service(
        service="intake",
        settings=settings,
        description="Intake and safety screening; publishes intake.submitted to clinic.intake.",
        routers=[router],
    )

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > settings.max_body_bytes:
            return JSONResponse(
                {"detail": f"request body larger than {settings.max_body_bytes} bytes"},
                status_code=413,
            )
        return await call_next(request)

    return app
