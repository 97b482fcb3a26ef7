"""Who acts on a visit from outside the front desk: the client, through the signed
link of a message (``?sig=``, naming ``"visit", visit_id``: ``shared/links.py``),
or else a staff key.

A link acts as ``commands.LINK``, which reaches the one visit the signature names.
Once the visit is cancelled its links no longer act (410, ``links.may_act``); its
page and calendar file still open and say so."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from services.scheduler.commands import LINK
from services.scheduler.store import CalendarStore
from shared import links
from shared.auth import Principal, current_principal, require_role
from shared.routes import runtime_of
from shared.vocabulary import Role

GONE = "the visit was cancelled; this link no longer acts"


@dataclass(frozen=True)
class Actor:
    principal: Principal
    by_link: bool  # the client through a signed link, else a staff key


def signed(request: Request, sig: str | None, visit_id: str) -> bool:
    """Whether ``sig`` is a current signature of a link to the visit."""
    runtime = runtime_of(request)
    secret = runtime.base.settings.link_secret.get_secret_value()
    return sig is not None and links.verify(secret, sig, "visit", visit_id, now=runtime.clock.now())


async def actor(
    request: Request, sig: str | None, visit_id: str, *, roles: Sequence[Role], acts: bool
) -> Actor:
    """The link's client when ``sig`` opens the visit (410 once the visit is cancelled,
    when the request ``acts``), else the bearer key's caller with one of ``roles``
    (401 without a key, 403 without the role)."""
    if signed(request, sig, visit_id):
        if acts:
            runtime = runtime_of(request)
            found = await CalendarStore(runtime.redis, runtime.keys).visit(visit_id)
            if found is not None and not links.may_act(found[1]):
                raise HTTPException(status.HTTP_410_GONE, GONE)
        return Actor(LINK, by_link=True)
    principal = await current_principal(request)
    require_role(principal, *roles)
    return Actor(principal, by_link=False)


__all__ = ["GONE", "Actor", "actor", "signed"]
