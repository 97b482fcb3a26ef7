"""Multi-step intake sessions: a draft in Redis, filled in section by section,
then submitted once (``POST .../submit`` is idempotent)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, Field

from services.intake.api import WRITERS, check_location
from services.intake.docs import (
    ACCEPTED_EXAMPLE,
    SECTION_PATCH_EXAMPLES,
    SESSION_CREATED_EXAMPLE,
    errors,
)
from services.intake.draft_store import (
    DraftStore,
    Gone,
    Locked,
    Raced,
    Stale,
    StoredDraft,
    Submitted,
)
from services.intake.drafts import IntakeDraft, Missing, assemble, merged, patched_sections
from services.intake.guards import renewing
from services.intake.per_runtime import once_per_runtime
from services.intake.submission import IntakeAccepted, accept
from shared.auth import CurrentPrincipal, Principal, require_role
from shared.envelope import derived_id
from shared.openapi import example_answer
from shared.routes import runtime_of
from shared.runtime import Runtime
from shared.settings import IntakeSettings

router = APIRouter(prefix="/v1/intake-sessions", tags=["intake sessions"])

WRITE_ATTEMPTS = 5  # re-reads after a concurrent patch of the same section


class SessionStart(BaseModel):
    location_id: str = Field(min_length=1, examples=["beaverton"])


class SessionCreated(BaseModel):
    session_id: str
    expires_at: AwareDatetime = Field(description="moved on by every patch")
    revision: int = 0


class SessionView(BaseModel):
    """A draft intake: what has been entered and what is still missing."""

    session_id: str
    location_id: str
    state: str = Field(description="draft, submitting or submitted", examples=["draft"])
    revision: int = Field(description="also the ETag; send it back in If-Match")
    expires_at: AwareDatetime
    created_at: AwareDatetime
    draft: IntakeDraft
    section_revisions: dict[str, int] = Field(
        description="the draft revision that last wrote each section"
    )
    missing: list[Missing] = Field(description="what the submit still needs")
    complete: bool
    submission: IntakeAccepted | None = None


def _store(runtime: Runtime) -> DraftStore:
    """The drafts of the runtime's deployment (one store per runtime)."""
    settings = runtime.base.settings
    if not isinstance(settings, IntakeSettings):
        raise TypeError("the intake routes run with IntakeSettings")
    ttl = timedelta(seconds=settings.session_ttl_s)
    return once_per_runtime(
        runtime,
        "drafts",
        lambda: DraftStore(runtime.redis, runtime.keys("intake-session"), ttl=ttl),
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionCreated,
    responses={201: example_answer(SESSION_CREATED_EXAMPLE), **errors(401, 403, 422, 429)},
)
async def create_session(
    start: SessionStart, principal: CurrentPrincipal, request: Request, response: Response
) -> SessionCreated:
    """Open a draft intake for a location in the key's scope."""
    require_role(principal, *WRITERS)
    runtime = runtime_of(request)
    check_location(runtime, principal, start.location_id, field=("body", "location_id"))
    session_id = str(uuid.uuid4())
    expires_at = await _store(runtime).create(
        session_id,
        location_id=start.location_id,
        created_by=principal.key_id,
        now=runtime.clock.now(),
    )
    response.headers["ETag"] = _etag(0)
    response.headers["Location"] = f"/v1/intake-sessions/{session_id}"
    return SessionCreated(session_id=session_id, expires_at=expires_at)


@router.get("/{session_id}", response_model=SessionView, responses=errors(401, 404, 410, 422, 429))
async def read_session(
    session_id: str, principal: CurrentPrincipal, request: Request, response: Response
) -> SessionView:
    """The draft, what is still missing, and (once submitted) the submit's answer.
    Reading does not extend the session; patches do."""
    runtime = runtime_of(request)
    draft = await _visible_draft(_store(runtime), runtime, principal, session_id)
    return _view(draft, response)


@router.patch(
    "/{session_id}",
    response_model=SessionView,
    responses=errors(401, 403, 404, 409, 410, 412, 413, 422, 429),
)
async def patch_session(
    session_id: str,
    patch: Annotated[IntakeDraft, Body(openapi_examples=SECTION_PATCH_EXAMPLES)],
    principal: CurrentPrincipal,
    request: Request,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(
            description="the ETag (revision) last read: the patch is refused with 412 when "
            "a section it touches was changed since; patches of other sections still apply"
        ),
    ] = None,
) -> SessionView:
    """Merge one or more sections: objects field by field (null removes a field), lists whole."""
    runtime = runtime_of(request)
    require_role(principal, *WRITERS)
    store = _store(runtime)
    sections = patched_sections(patch)
    if not sections:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": "send at least one section", "type": "missing"}]
        )
    expected = _revision_of(if_match)
    for _ in range(WRITE_ATTEMPTS):
        draft = await _visible_draft(store, runtime, principal, session_id)
        if draft.state != "draft":
            raise _locked(draft.state)
        update = {s: merged(draft.sections.get(s), v, section=s) for s, v in sections.items()}
        try:
            await store.write(draft, update, if_match=expected, now=runtime.clock.now())
        except Raced:
            continue
        except Stale as exc:
            raise HTTPException(
                status.HTTP_412_PRECONDITION_FAILED,
                f"section {exc.section!r} changed since revision {expected}; read the "
                "session again and re-apply the change"
                if exc.section
                else f"revision {expected} is not a revision of this session",
            ) from exc
        except Locked as exc:
            raise _locked(exc.state) from exc
        except Gone as exc:
            raise _not_found() from exc
        return _view(await store.load(session_id), response)
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        "the section keeps changing under concurrent edits; retry",
        headers={"Retry-After": "1"},
    )


@router.post(
    "/{session_id}/submit",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=IntakeAccepted,
    responses={
        202: example_answer(ACCEPTED_EXAMPLE),
        **errors(401, 403, 404, 409, 410, 422, 429, 503),
    },
)
async def submit_session(
    session_id: str, principal: CurrentPrincipal, request: Request
) -> IntakeAccepted:
    """Submit the draft: 202 once the intake and its ``intake.submitted`` are stored
    (on the broker, or in the outbox the relay empties). A repeated submit answers
    the same; a 503 leaves the draft as it was, ready for a retry."""
    runtime = runtime_of(request)
    require_role(principal, *WRITERS)
    store = _store(runtime)
    for _ in range(WRITE_ATTEMPTS):
        draft = await _visible_draft(store, runtime, principal, session_id)
        if draft.submission is not None:
            return IntakeAccepted.model_validate(draft.submission)
        document = assemble(draft.location_id, draft.sections)
        if isinstance(document, list):
            if draft.state == "submitting":
                raise _locked(draft.state)
            raise RequestValidationError([_missing_error(item) for item in document])
        lease = store.lease(draft)
        try:
            async with renewing(runtime.redis, lease):  # killed, the lease lapses in seconds
                return await accept(
                    runtime,
                    document,
                    # derived from the session: a retry after an unconfirmed send is the
                    # same intake
                    intake_id=derived_id("intake-session", session_id),
                    loc=("draft",),
                    answered=lambda pipe, answer: store.submitted_on(
                        pipe, session_id, answer.model_dump(mode="json")
                    ),
                    guard=lease,
                )
        except Raced:  # patched since it was read: submit what it holds now
            continue
        except Submitted as done:
            return IntakeAccepted.model_validate(done.answer)
        except Gone as exc:
            raise _not_found() from exc
        except Locked as exc:
            raise _locked(exc.state) from exc
        except BaseException:
            await lease.release()  # only a lease this submit took, with nothing stored
            raise
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        "the draft keeps changing under concurrent edits; retry",
        headers={"Retry-After": "1"},
    )


async def _visible_draft(
    store: DraftStore, runtime: Runtime, principal: Principal, session_id: str
) -> StoredDraft:
    """The draft if it exists, has not expired and lies in the key's locations."""
    try:
        draft = await store.load(session_id)
    except Gone as exc:
        raise _not_found() from exc
    if not principal.reaches(draft.location_id):
        raise _not_found()
    if draft.expires_at <= runtime.clock.now():
        raise HTTPException(status.HTTP_410_GONE, "this intake session has expired")
    return draft


def _view(draft: StoredDraft, response: Response) -> SessionView:
    response.headers["ETag"] = _etag(draft.revision)
    missing = assemble(draft.location_id, draft.sections)
    gaps = missing if isinstance(missing, list) else []
    return SessionView(
        session_id=draft.session_id,
        location_id=draft.location_id,
        state=draft.state,
        revision=draft.revision,
        expires_at=draft.expires_at,
        created_at=draft.created_at,
        draft=IntakeDraft.model_validate(draft.sections),
        section_revisions=draft.section_revisions,
        missing=gaps,
        complete=not gaps,
        submission=(IntakeAccepted.model_validate(draft.submission) if draft.submission else None),
    )


def _missing_error(item: Missing) -> dict[str, Any]:
    return {"loc": ("draft", *item.loc), "msg": item.msg, "type": "missing"}


def _etag(revision: int) -> str:
    return f'"{revision}"'


def _revision_of(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise HTTPException(
            status.HTTP_412_PRECONDITION_FAILED, "If-Match must be an ETag of this session"
        )
    return int(tag)


def _locked(state: str) -> HTTPException:
    if state == "submitted":
        return HTTPException(
            status.HTTP_409_CONFLICT, "this intake session was submitted; it no longer changes"
        )
    return HTTPException(
        status.HTTP_409_CONFLICT,
        "this intake session is being submitted; retry shortly",
        headers={"Retry-After": "1"},
    )


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "no such intake session")
