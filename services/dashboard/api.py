"""The ops dashboard over HTTP: the pages, their live feed, and dead letters.

Pages are static (no build step) and ask for an API key once; the data comes
from ``/v1/...`` with ``Authorization: Bearer``. Ops and admin keys read; only
admin replays a dead letter. A key reaches the chain page only with every
location (``*``), and a location page only for its own locations.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from services.dashboard.probes import Prober
from services.dashboard.projection import DeadLetter
from services.dashboard.store import DashboardStore
from services.dashboard.views import overview, summary, window
from shared.auth import CurrentPrincipal, Principal, require_location, require_role
from shared.binding import replay_headers
from shared.errors import errors
from shared.kafka import PublishError
from shared.routes import runtime_of
from shared.topics import PUBLIC_TOPICS
from shared.vocabulary import Role

router = APIRouter()
READERS: tuple[Role, ...] = ("ops", "admin")
STREAM_EVERY_S = 2.0
KEEPALIVE_S = 15.0
_STATIC = resources.files("services.dashboard") / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


# -- pages --------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/locations/{location_id}", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    """The dashboard page; which scope it shows is read from its own address."""
    return HTMLResponse((_STATIC / "dashboard.html").read_text())


@router.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    if suffix not in _TYPES or "/" in name or name.startswith("."):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    file = _STATIC / name
    if not file.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return Response(file.read_text(), media_type=_TYPES[suffix])


# -- data ---------------------------------------------------------------------


@router.get("/v1/me", tags=["dashboard"], responses=errors(401, 403, 429))
async def me(request: Request, principal: CurrentPrincipal) -> dict[str, Any]:
    """The caller's role and the locations the dashboard may show them."""
    require_role(principal, *READERS)
    chain = runtime_of(request).chain
    return {
        "role": principal.role,
        "chain": {"id": chain.chain.id, "name": chain.chain.name},
        "chain_wide": "*" in principal.locations,
        "locations": [
            {"id": loc.id, "name": loc.name, "timezone": loc.timezone}
            for loc in chain.locations
            if principal.reaches(loc.id)
        ],
        "may_replay": principal.role == "admin",
    }


@router.get("/v1/overview", tags=["dashboard"], responses=errors(401, 403, 404, 429))
async def current_overview(
    request: Request,
    principal: CurrentPrincipal,
    location: Annotated[str | None, Query(description="a location id; none: the chain")] = None,
) -> dict[str, Any]:
    """Flow, totals, bookings, waitlist, notifications, dead letters, lag and health."""
    _may_see(request, principal, location)
    return await _picture(request, location)


@router.get("/v1/stream", tags=["dashboard"], responses=errors(401, 403, 404, 429))
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    location: Annotated[str | None, Query(description="a location id; none: the chain")] = None,
) -> StreamingResponse:
    """Server-sent events: an ``overview`` event whenever the picture changes."""
    _may_see(request, principal, location)

    async def events() -> AsyncIterator[str]:
        last: str | None = None
        quiet = 0.0
        while not await request.is_disconnected():
            picture = await _picture(request, location)
            shown = json.dumps(picture, sort_keys=True)
            if shown != last:
                yield f"event: overview\ndata: {shown}\n\n"
                last, quiet = shown, 0.0
            elif quiet >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(STREAM_EVERY_S)
            quiet += STREAM_EVERY_S

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/v1/deadletters/{dead_letter_id}", tags=["dashboard"], responses=errors(401, 403, 404, 429)
)
async def inspect(
    request: Request, principal: CurrentPrincipal, dead_letter_id: str
) -> dict[str, Any]:
    """One dead letter with its original record, to see what was wrong with it."""
    dead = await _dead_letter(request, principal, dead_letter_id)
    store = _store(request)
    replayed = (await store.replayed([dead.position])).get(dead.position)
    return {
        **summary(dead, replayed),
        "key": dead.key,
        "payload_encoding": dead.payload_encoding,
        "payload": _readable(dead),
        "payload_truncated": dead.payload_truncated,
        "payload_bytes": dead.payload_bytes,
        "payload_sha256": dead.payload_sha256,
    }


@router.post(
    "/v1/deadletters/{dead_letter_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    tags=["dashboard"],
    responses=errors(401, 403, 404, 409, 429, 503),
)
async def replay(
    request: Request, principal: CurrentPrincipal, dead_letter_id: str
) -> dict[str, Any]:
    """Send the original record, byte for byte and with its key, back to its topic
    (a CloudEvent with the structured-mode header it was published with).
    Done once the cause is fixed: the consumers handle it as new (a dead-lettered
    event is never marked handled). Once per record, whichever of the services
    that failed on it is named: the record goes to all of them; a repeat is a 409."""
    require_role(principal, "admin")
    dead = await _dead_letter(request, principal, dead_letter_id)
    if dead.payload_truncated:  # sending the beginning of a record would be a new poison
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"only the beginning of this record was kept; it is at {dead.position}",
        )
    store = _store(request)
    if dead.position in await store.replayed([dead.position]):
        raise HTTPException(status.HTTP_409_CONFLICT, "this record was replayed already")
    # two admins pressing replay at once send the record once; a claim lapses on its
    # own, so a dashboard that stops between claim and send blocks nobody for long
    if not await store.claim_replay(dead.position):
        raise HTTPException(status.HTTP_409_CONFLICT, "this record is being replayed")
    runtime = runtime_of(request)
    payload = (
        base64.b64decode(dead.payload)
        if dead.payload_encoding == "base64"
        else dead.payload.encode()
    )
    try:
        if dead.position in await store.replayed([dead.position]):  # by the claim before
            raise HTTPException(status.HTTP_409_CONFLICT, "this record was replayed already")
        partition, offset = await runtime.publisher.send_raw(
            dead.source_topic,
            key=dead.key.encode() if dead.key is not None else None,
            value=payload,
            headers=replay_headers(payload),
        )
        record = {
            "at": runtime.clock.now().isoformat(),
            "by": principal.key_id,
            "topic": dead.source_topic,
            "partition": partition,
            "offset": offset,
        }
        await store.mark_replayed(dead.position, record)
    except PublishError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the broker did not take the record; nothing was replayed, try again",
        ) from exc
    finally:
        await store.release_replay(dead.position)
    return {"id": dead.id, "replayed": record}


# -- helpers ------------------------------------------------------------------


def _store(request: Request) -> DashboardStore:
    runtime = runtime_of(request)
    return DashboardStore(runtime.redis, runtime.keys)


def _may_see(request: Request, principal: Principal, location: str | None) -> None:
    require_role(principal, *READERS)
    if location is None:
        if "*" not in principal.locations:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "the chain page needs a key for every location"
            )
        return
    if not runtime_of(request).chain.has_location(location):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    require_location(principal, location)


async def _dead_letter(request: Request, principal: Principal, dead_letter_id: str) -> DeadLetter:
    require_role(principal, *READERS)
    store = _store(request)
    dead = await store.dead_letter(await store.generation(), dead_letter_id)
    if dead is None or not principal.reaches(dead.location):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return dead


def _readable(dead: DeadLetter) -> Any:
    if dead.payload_encoding != "utf-8":
        return dead.payload
    try:
        return json.loads(dead.payload)
    except ValueError:
        return dead.payload


async def _picture(request: Request, location: str | None) -> dict[str, Any]:
    store = _store(request)
    runtime = runtime_of(request)
    minutes = window(runtime.clock.now(), request.app.state.flow_window_minutes)
    model = await store.read(await store.generation(), minutes, location)
    prober: Prober = request.app.state.prober
    picture = overview(
        model,
        prober.latest,
        now=runtime.clock.now(),
        minutes=minutes,
        topics=[spec.name for spec in PUBLIC_TOPICS],
        location=location,
    )
    chain = runtime_of(request).chain
    picture["scope"] = {
        "chain": {"id": chain.chain.id, "name": chain.chain.name},
        "location": next(
            ({"id": loc.id, "name": loc.name} for loc in chain.locations if loc.id == location),
            None,
        ),
    }
    return picture
