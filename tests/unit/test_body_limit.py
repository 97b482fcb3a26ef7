"""BodyLimit: bodies over the limit get 413 whether or not they declare their length."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.types import Message, Receive, Scope, Send

from shared.body_limit import BodyLimit

LIMIT = 100
TOO_LARGE = {"detail": f"request body larger than {LIMIT} bytes"}


class Note(BaseModel):
    text: str


def make_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Any:
        return await request.json()

    @app.post("/note")
    async def note(body: Note) -> Note:  # FastAPI reads the body itself
        return body

    app.add_middleware(BodyLimit, max_bytes=LIMIT)
    return app


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=make_app()), base_url="http://t")


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_small_body_passes() -> None:
    async with client() as http:
        response = await http.post("/echo", json={"text": "hello"})
    assert response.status_code == 200
    assert response.json() == {"text": "hello"}


async def test_large_body_with_content_length_is_refused() -> None:
    async with client() as http:
        response = await http.post("/echo", json={"text": "x" * 200})
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


async def test_large_chunked_body_is_refused() -> None:
    parts = (b'{"text": "', b"x" * 60, b"x" * 60, b'"}')
    async with client() as http:
        response = await http.post("/echo", content=chunks(*parts))
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


async def test_small_chunked_body_passes() -> None:
    async with client() as http:
        response = await http.post("/echo", content=chunks(b'{"text": ', b'"hi"}'))
    assert "content-length" not in response.request.headers
    assert response.status_code == 200
    assert response.json() == {"text": "hi"}


async def test_large_chunked_body_to_a_model_route_is_413_not_400() -> None:
    parts = (b'{"text": "', b"x" * 120, b'"}')
    async with client() as http:
        response = await http.post("/note", content=chunks(*parts))
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


async def test_body_exactly_at_the_limit_passes() -> None:
    body = b'{"text": "' + b"x" * (LIMIT - 12) + b'"}'
    assert len(body) == LIMIT
    async with client() as http:
        sized = await http.post("/echo", content=body)
        chunked = await http.post("/echo", content=chunks(body[:50], body[50:]))
    assert sized.status_code == 200
    assert chunked.status_code == 200


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
async def test_non_http_scopes_pass_through(scope_type: str) -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def receive() -> Message:
        return {"type": "websocket.receive", "bytes": b"x" * 1000}

    async def send(message: Message) -> None:
        raise AssertionError("BodyLimit must not answer non-http scopes")

    scope: Scope = {"type": scope_type, "headers": [(b"content-length", b"1000")]}
    await BodyLimit(inner, max_bytes=LIMIT)(scope, receive, send)
    assert seen == [scope]
