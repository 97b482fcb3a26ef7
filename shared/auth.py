"""API keys from the chain configuration: who is calling, and what they may reach."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict

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
    """Constant-time comparison against every configured key."""
    match = None
    for candidate in chain.api_keys:
        if hmac.compare_digest(candidate.key.encode(), presented.encode()):
            match = candidate
    return match


async def current_principal(request: Request) -> Principal:
    """The caller behind the bearer key (401 otherwise), within its rate limit (429)."""
    key = _presented_key(request)
    limiter: RateLimiter = request.app.state.rate_limiter
    default: Limit = request.app.state.rate_limit
    key_id = hashlib.sha256(key.key.encode()).hexdigest()[:16]
    limit = Limit(
        per_minute=key.rate_limit_per_minute or default.per_minute,
        burst=key.rate_limit_burst or default.burst,
    )
    decision = await limiter.take(request.app.state.rate_limit_prefix + key_id, limit)
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


def _presented_key(request: Request) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = find_key(request.app.state.chain, token.strip())
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "unknown API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return key


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {principal.role!r} may not do this")


def require_location(principal: Principal, location_id: str) -> None:
    """404 rather than 403 for records outside the key's locations: existence is not leaked."""
    if not principal.reaches(location_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
