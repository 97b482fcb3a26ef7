"""API keys from the chain configuration: who is calling, and what they may reach."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import Headers

from shared.chain import ApiKey, ChainConfig
from shared.ratelimit import Limit, RateLimiter, retry_after_header
from shared.vocabulary import Role


class Principal(BaseModel):
    """The verified caller; handlers take role and scope from here, never from the body."""

    model_config = ConfigDict(frozen=True)

    role: Role
    locations: tuple[str, ...]
    therapist_id: str | None = None
    name: str | None = None
    key_id: str  # a digest of the key: names the caller in stored records, never the key itself

    def reaches(self, location_id: str) -> bool:
        return "*" in self.locations or location_id in self.locations


def find_key(chain: ChainConfig, presented: str) -> ApiKey | None:
    """Constant-time comparison against every configured key (of bytes: a header may
    carry any character)."""
    offered = presented.encode("utf-8", "surrogateescape")
    match = None
    for candidate in chain.api_keys:
        if hmac.compare_digest(candidate.key.encode(), offered):
            match = candidate
    return match


PRINCIPAL = "clinicflow.principal"  # the scope key AuthFirst leaves the verified caller under


async def current_principal(request: Request) -> Principal:
    """The caller behind the bearer key (401 otherwise), within its rate limit (429).

    Routes that take this dependency have been authenticated by :class:`shared.guard.AuthFirst`
    before their body was read; the principal it found is used as it is."""
    found = request.scope.get(PRINCIPAL)
    if isinstance(found, Principal):
        return found
    client = request.client
    return await authenticate(request.app.state, request.headers, client.host if client else "")


async def authenticate(state: Any, headers: Headers, address: str) -> Principal:
    """The caller behind the bearer key in ``headers``, sent from ``address``.

    401 without a key or with an unknown one; 429 while ``address`` has used up its
    allowance of failed keys (whatever key it sends now: a valid key found by guessing
    must not be told apart) or while the key is over its own rate limit."""
    limiter: RateLimiter = state.rate_limiter
    failures_key = state.rate_limit_prefix + "failed-keys:" + (address or "unknown")
    failures: Limit = state.failed_key_limit
    blocked = await limiter.peek(failures_key, failures)
    if not blocked.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many unknown API keys from this address; retry later",
            headers={"Retry-After": retry_after_header(blocked)},
        )
    token = _bearer_token(headers)
    key = find_key(state.chain, token)
    if key is None:
        await limiter.take(failures_key, failures)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown API key", headers={"WWW-Authenticate": "Bearer"}
        )
    default: Limit = state.rate_limit
    key_id = hashlib.sha256(key.key.encode()).hexdigest()[:16]
    limit = Limit(
        per_minute=key.rate_limit_per_minute or default.per_minute,
        burst=key.rate_limit_burst or default.burst,
    )
    decision = await limiter.take(state.rate_limit_prefix + key_id, limit)
    if not decision.allowed:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit of {limit.per_minute} requests per minute for this key exceeded",
            headers={"Retry-After": retry_after_header(decision)},
        )
    return Principal(
        role=key.role,
        locations=tuple(key.locations),
        therapist_id=key.therapist_id,
        name=key.name,
        key_id=key_id,
    )


def _bearer_token(headers: Headers) -> str:
    """The presented key; 401 when there is none (not a failed key: nothing was guessed)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not do this")


def require_location(principal: Principal, location_id: str) -> None:
    """404 rather than 403 for records outside the key's locations: existence is not leaked."""
    if not principal.reaches(location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
