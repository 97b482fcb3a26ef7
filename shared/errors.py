"""The error shapes every HTTP endpoint answers with, for the OpenAPI documents.

Every error is JSON with ``detail``: a sentence for the caller, or for 422 the
list of field errors, each with the path of the offending field in ``loc``.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str = Field(examples=["location outside this key's scope"])


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description="path of the field: 'body', then keys and list positions",
        examples=[["body", "complaints", 0, "intensity"]],
    )
    msg: str = Field(examples=["Input should be less than or equal to 10"])
    type: str = Field(examples=["less_than_equal"])
    input: Any = None


class ValidationErrorBody(BaseModel):
    detail: list[FieldError]


MEANINGS: Final[dict[int, str]] = {
    400: "the request cannot be processed as sent",
    401: "no API key, or an unknown one (send 'Authorization: Bearer <key>')",
    403: "the key's role may not do this, or the location is outside the key's scope",
    404: "no such record, or it lies outside the key's locations (existence is not revealed)",
    409: "conflicts with the record's state, or the request is already being processed",
    410: "the record has expired",
    412: "If-Match names an older revision than the one stored: read again, then retry",
    413: "the request body is larger than the service accepts",
    422: "a field is missing or invalid: 'loc' names each one",
    429: "the key's rate limit is exceeded; retry after 'Retry-After' seconds",
    503: "a dependency (event broker, Redis) did not answer; nothing was changed, retry",
}


RETRY_AFTER: Final[dict[str, Any]] = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "integer", "minimum": 0},
    }
}
# the answers that tell the caller when to come back
RETRIED: Final = frozenset({429, 503})


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error codes, with their shape and meaning.

    What the layers in front of the routes answer is added to every operation it applies
    to by ``shared.openapi``: the 401, 429 and 503 of the key check, the 413 of the body
    limit, and the 400 FastAPI gives a body it cannot decode at all (not UTF-8 JSON)
    before validating it (422). Naming them here as well does no harm."""
    return {code: _response(code) for code in codes}


def _response(code: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "model": ValidationErrorBody if code == 422 else ErrorBody,
        "description": MEANINGS[code],
    }
    if code in RETRIED:
        response["headers"] = RETRY_AFTER
    return response
