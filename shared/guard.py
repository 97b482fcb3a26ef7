"""Authentication before the body: an ASGI middleware that verifies the API key of a
route that needs one before the route reads its body.

FastAPI reads and validates a request's body before it resolves the route's
dependencies, so a request without a key but with a broken body would learn about
its body (422) instead of being told to authenticate (401). Here the route a request
matches is looked up first; when that route depends on ``current_principal``, the key
is verified (401, 429) and the principal left in the scope, where the dependency
finds it. Routes that do not take the dependency (health, signed links, provider
webhooks) pass untouched and check what they accept themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import fastapi.routing
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth import PRINCIPAL, authenticate, current_principal
from shared.redis_store import PoolExhausted

# the limits live in Redis: without it no key can be checked, and the caller may retry
STATE_STORE_DOWN = HTTPException(
    503, "the state store (Redis) did not answer; retry shortly", headers={"Retry-After": "5"}
)
# Redis answers, but this process's connections stayed busy past the request's
# deadline (REDIS_POOL_WAIT_S): the service is saturated, not down
STATE_STORE_BUSY = HTTPException(
    503,
    "no state store (Redis) connection came free in time; retry shortly",
    headers={"Retry-After": "5"},
)


def state_store_answer(failure: Exception) -> HTTPException:
    """The 503 of a Redis failure: busy past the deadline, or not answering."""
    return STATE_STORE_BUSY if isinstance(failure, PoolExhausted) else STATE_STORE_DOWN


class AuthFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._needs_key: dict[int, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._route_needs_key(scope):
            address = scope["client"][0] if scope.get("client") else ""
            try:
                scope[PRINCIPAL] = await authenticate(
                    scope["app"].state, Headers(scope=scope), address
                )
            except HTTPException as refused:
                await answer_of(refused)(scope, receive, send)
                return
            except (RedisConnectionError, RedisTimeoutError) as failure:
                await answer_of(state_store_answer(failure))(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _route_needs_key(self, scope: Scope) -> bool:
        found = matched_route(scope)
        route = found[0] if found is not None else None
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            return False  # unmatched (404), another method (405), or not a FastAPI route
        known = self._needs_key.get(id(dependant))
        if known is None:
            known = self._needs_key[id(dependant)] = needs_key(route)
        return known


def needs_key(route: Any) -> bool:
    """Whether ``route`` takes ``current_principal``: the key is then checked here, before
    the body (the OpenAPI documents require the bearer key of exactly these routes)."""
    dependant = getattr(route, "dependant", None)
    return dependant is not None and _depends_on(dependant, current_principal)


def matched_route(scope: Scope) -> tuple[Any, Scope] | None:
    """The route of the app that ``scope`` fully matches (its full path: see ``routes_of``),
    with what the match adds to the scope (``path_params``); None when none does."""
    for route in routes_of(scope["app"].router.routes):
        match, child = route.matches(scope)
        if match == Match.FULL:
            return route, child
    return None


def routes_of(routes: Sequence[BaseRoute]) -> Iterable[Any]:
    """Every route with its full path: FastAPI releases that keep included routers
    whole (rather than copying their routes into the app) list them through
    ``iter_route_contexts``; earlier ones hold the copies in ``routes``."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    return contexts(routes) if contexts is not None else routes


def _depends_on(dependant: Any, call: Callable[..., Any]) -> bool:
    """Whether ``call`` is among the dependencies of a route, at any depth."""
    return any(
        sub.call is call or _depends_on(sub, call) for sub in getattr(dependant, "dependencies", [])
    )


def answer_of(refused: HTTPException) -> JSONResponse:
    """``refused`` as the JSON answer FastAPI gives it, for the layers outside its
    exception handlers (a Starlette response is itself an ASGI app)."""
    return JSONResponse({"detail": refused.detail}, refused.status_code, refused.headers)
