"""An ASGI middleware that refuses HTTP request bodies larger than a fixed size with 413.

A declared ``content-length`` over the limit is refused before the app runs. A body
without one (chunked) is counted as the app reads it; the read that crosses the limit
raises inside the app, and the middleware answers 413 instead, provided the response
has not started. Apps that catch that error themselves (FastAPI turns a failed body
read into a 400) still end in a 413: once the limit is crossed, whatever response the
app begins is replaced.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _BodyTooLarge(Exception):
    """Raised from the wrapped ``receive`` once the body has crossed the limit."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refusal()(scope, receive, send)
            return

        received = 0
        exceeded = False  # the body has crossed the limit
        started = False  # a response has begun reaching the client
        refused = False  # that response is our 413; the app's messages are dropped

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, refused
            if refused:
                return
            if message["type"] == "http.response.start" and not started:
                started = True
                if exceeded:
                    refused = True
                    await self._refusal()(scope, receive, send)
                    return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refusal()(scope, receive, send)

    def _refusal(self) -> JSONResponse:
        return JSONResponse({"detail": f"request body larger than {self.max_bytes} bytes"}, 413)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None  # malformed; the server rejects it, and counting still applies
