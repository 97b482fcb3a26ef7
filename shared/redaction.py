"""The net under "no PHI in a log line" (DESIGN.md "Guarantees": minimum necessary).

The rule is that log calls pass ids, types, counts and reasons, never payloads.
This module catches what slips past it: the values of keys that carry client data
(names, contact data, complaints, health, goals, notes, message bodies) are
replaced, and e-mail addresses, phone numbers and the inputs pydantic quotes in
its error messages are masked inside any text. A name inside free text cannot be
recognised; only the rule keeps those out.
"""

from __future__ import annotations

import dataclasses
import re
import traceback
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from fastapi.exceptions import ValidationException
from pydantic import BaseModel, ValidationError

REDACTED = "[redacted]"
MAX_DEPTH = 8

# keys whose values are client data wherever they appear (compared in lower case,
# "-" read as "_"): the intake document, contact records, messages, raw inputs
PHI_KEYS = frozenset(
    {
        # who the client is and how to reach them
        "name", "first_name", "last_name", "full_name", "given_name", "family_name",
        "email", "email_address", "phone", "phone_number", "mobile", "address",
        "street", "postal_code", "date_of_birth", "dob", "birth_date",
        "client", "contact", "recipient", "to", "from",
        # what hurts and why
        "complaint", "complaints", "frequency", "aggravating", "relieving",
        "provoking_movements", "history", "old_injuries", "health",
        "contraindications", "precautions", "detail", "medications", "medication",
        "goals", "notes", "note", "findings",
        # text written by or for the client, and whole documents
        "text", "body", "message_body", "reply", "data", "payload", "document",
        "input", "input_value", "form",
    }
)  # fmt: skip

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# "+1 (503) 555-0142" and "+15035550142" (E.164), or "(503) 555-0142" and
# "503.555.0142"; a bare run of digits is left alone (offsets, epochs, counts)
_PHONE = re.compile(
    r"(?<![\w+])\+\d[\d ().-]{5,22}\d(?!\w)"
    r"|(?<![\w.+-])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![\w-])"
)
_PHONE_DIGITS = range(7, 16)
# pydantic's "[type=..., input_value='Jane Doe', input_type=str]"
_PYDANTIC_INPUT = re.compile(r"input_value=.*(?=, input_type=)")


def scrub_text(text: str) -> str:
    """``text`` with quoted validation inputs, e-mail addresses and phone numbers masked."""
    text = _PYDANTIC_INPUT.sub(f"input_value={REDACTED}", text)
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub(_phone, text)


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group())
    return "[phone]" if digits in _PHONE_DIGITS else match.group()


def is_phi_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in PHI_KEYS


def scrub(value: Any, *, depth: int = 0) -> Any:
    """A JSON-ready copy of ``value`` with PHI keys redacted and all text scrubbed."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= MAX_DEPTH:
        return "[truncated]"
    if isinstance(value, BaseModel):
        return scrub(value.model_dump(mode="json"), depth=depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return scrub(dataclasses.asdict(value), depth=depth + 1)
    if isinstance(value, BaseException):
        return describe_error(value)
    if isinstance(value, Mapping):
        return {
            scrub_text(str(k)): REDACTED if is_phi_key(k) else scrub(v, depth=depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [scrub(item, depth=depth + 1) for item in value]
    return scrub_text(repr(value))


def describe_fields(errors: Iterable[Mapping[str, Any]]) -> str:
    """``path: message`` per field error, never the input that failed."""
    parts = []
    for error in errors:
        path = ".".join(str(p) for p in error.get("loc", ())) or "(root)"
        parts.append(f"{path}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def safe_message(exc: BaseException) -> str:
    """What an exception says, minus the values validation errors quote."""
    if isinstance(exc, ValidationError):
        fields = exc.errors(include_url=False, include_context=False, include_input=False)
        return scrub_text(f"{exc.title}: {describe_fields(fields)}")
    if isinstance(exc, ValidationException):  # FastAPI's request/response validation
        return scrub_text(describe_fields(exc.errors()))
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not break the log line
        text = "<unprintable>"
    return scrub_text(text)


def describe_error(exc: BaseException) -> str:
    """``Type: message``, safe to log and to put in a dead letter's reason."""
    message = safe_message(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def exception_chain(exc: BaseException) -> Iterator[tuple[BaseException, bool]]:
    """The exception, then what caused it (``True``) or was being handled (``False``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    is_cause = False
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current, is_cause
        if current.__cause__ is not None:
            current, is_cause = current.__cause__, True
        elif current.__context__ is not None and not current.__suppress_context__:
            current, is_cause = current.__context__, False
        else:
            current = None


def exception_dicts(exc: BaseException) -> list[dict[str, Any]]:
    """A structured traceback: type, safe message and frames of every exception in
    the chain, outermost first; never the frames' local variables."""
    stacks: list[dict[str, Any]] = []
    for current, is_cause in exception_chain(exc):
        stack: dict[str, Any] = {
            "exc_type": type(current).__name__,
            "exc_value": safe_message(current),
            "is_cause": is_cause,
            "frames": [
                {"filename": f.filename, "lineno": f.lineno, "function": f.name}
                for f in traceback.extract_tb(current.__traceback__)
            ],
        }
        if isinstance(current, BaseExceptionGroup):
            stack["exceptions"] = [exception_dicts(inner) for inner in current.exceptions]
        stacks.append(stack)
    return stacks


def exception_text(exc: BaseException) -> str:
    """The same traceback as readable text, for the console format."""
    blocks = []
    for current, is_cause in reversed(list(exception_chain(exc))):
        frames = traceback.format_list(traceback.extract_tb(current.__traceback__))
        blocks.append(
            "Traceback (most recent call last):\n"
            + "".join(frames)
            + f"{type(current).__name__}: {safe_message(current)}"
        )
        if current is not exc:
            blocks.append(
                "The above exception was the direct cause of the following exception:"
                if is_cause
                else "During handling of the above exception, another exception occurred:"
            )
    return "\n\n".join(blocks)
