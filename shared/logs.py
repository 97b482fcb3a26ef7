"""Structured logs: one JSON object per line on stderr, from structlog loggers and
from the standard library's ``logging`` alike (faust, aiokafka, uvicorn, and our
modules' ``logging.getLogger(__name__)``).

Every line has ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``event`` (the
message) and ``service``, plus the context bound for the work at hand:

- consuming a record (shared/streams.py): ``topic``, ``partition``, ``offset``,
  ``event_id``, ``event_type``, ``correlation_id``, ``causation_id`` (the record
  being handled: the cause of whatever the line reports, as on the events its
  handler publishes), ``location_id``, ``chain_id``;
- serving a request (shared/http.py): ``method``, ``route`` (the template, never
  the raw path), ``request_id`` and ``correlation_id`` (from ``X-Request-ID`` /
  ``X-Correlation-ID`` when sent), ``location_id`` when the path names one; the
  request's closing line adds ``status`` and ``duration_ms``.

An exception becomes a structured ``exception`` field (type, message, frames of
each exception in the chain), without local variables and without the inputs
pydantic quotes in its messages. ``stdlib`` ``extra={...}`` fields become fields.

The format is the ``CLINICFLOW_LOG_FORMAT`` setting: ``json`` (the default) or
``console`` (one readable line per entry, for development). The level is the
``CLINICFLOW_LOG_LEVEL`` setting.

No line may carry PHI: log calls pass ids, types, counts and reasons, never
payloads; shared/redaction.py is the net under that rule, run on every line.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from shared.envelope import Envelope
from shared.redaction import REDACTED, exception_dicts, exception_text, is_phi_key, scrub

# chatty at INFO; faust's services log through the module of their class, here
# shared.faust_app
NOISY_LOGGERS: Final = ("faust", "mode", "aiokafka", "kafka", "shared.faust_app", "httpx")
# the access line comes from shared/http.py, with the route template instead of the path
QUIET_LOGGERS: Final = ("uvicorn.access",)
OWN_HANDLERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access")
# record attributes that are no field of their own (uvicorn repeats its message in colour)
_DROPPED_EXTRAS: Final = frozenset({"color_message", "taskName"})
_FIXED_KEYS: Final = frozenset({"timestamp", "level", "logger"})
_LEADING_KEYS: Final = ("timestamp", "level", "logger", "event", "service")
_RECORD_ATTRIBUTES: Final = {*logging.makeLogRecord({}).__dict__, "message", "asctime"}


def configure_logging(
    level: str | int, *, service: str, json: bool = True, stream: TextIO | None = None
) -> None:
    """Send every log record of the process, structlog's and stdlib's, through one
    handler on ``stream`` (stderr): JSON lines, or readable lines with ``json=False``.
    Calling it again replaces the handler it installed before."""
    common: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _default_service(service),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *common,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # loggers are module globals: caching would pin them to the first configuration
        cache_logger_on_first_use=False,
    )
    target = stream if stream is not None else sys.stderr
    renderer: Processor = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if json
        else structlog.dev.ConsoleRenderer(colors=_is_terminal(target))
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_record_extras, *common],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _render_exception(structured=json),
            scrub_phi,
            _leading_keys_first,
            renderer,
        ],
    )
    handler = logging.StreamHandler(target)
    handler.setFormatter(formatter)
    handler.set_name("clinicflow")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "clinicflow"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in (*NOISY_LOGGERS, *QUIET_LOGGERS):
        logging.getLogger(name).setLevel(logging.WARNING)
    # a library that configured its own handlers (uvicorn's default log config
    # does) would print past the renderer and the redaction: its records go here
    for name in OWN_HANDLERS:
        library = logging.getLogger(name)
        for old in list(library.handlers):
            library.removeHandler(old)
        library.propagate = True


def reset_logging() -> None:
    """Undo ``configure_logging`` (tests that configure it put things back)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "clinicflow"]:
        root.removeHandler(old)
    structlog.reset_defaults()


def get_logger(name: str) -> Any:
    """A structlog logger: ``log.info("plan built", plan_id=...)``; fields, not payloads."""
    return structlog.stdlib.get_logger(name)


def envelope_context(envelope: Envelope) -> dict[str, str]:
    """The log context of handling ``envelope``: ids only, never its data."""
    context = {
        "event_id": envelope.id,
        "event_type": envelope.type,
        "correlation_id": envelope.correlationid,
        "causation_id": envelope.id,
        "chain_id": envelope.chainid,
    }
    if envelope.locationid is not None:
        context["location_id"] = envelope.locationid
    return context


@contextmanager
def bound(**context: Any) -> Iterator[None]:
    """Bind ``context`` to every line logged inside; restored on the way out, so
    nothing leaks into the next record or request."""
    with structlog.contextvars.bound_contextvars(**context):
        yield


def scrub_phi(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The PHI net as a processor: keys that carry client data are redacted, and
    e-mail addresses and phone numbers inside any value are masked."""
    scrubbed: EventDict = {}
    for key, value in event_dict.items():
        if key in _FIXED_KEYS:
            scrubbed[key] = value
        else:
            scrubbed[key] = REDACTED if is_phi_key(key) else scrub(value)
    return scrubbed


def _leading_keys_first(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    leading = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    return leading | {k: v for k, v in event_dict.items() if k not in leading}


def _default_service(service: str) -> Processor:
    # a processor or request bound a service of its own (several in one process in tests)
    def add(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _record_extras(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """``logging`` calls' ``extra={...}`` as fields of their own."""
    record: logging.LogRecord | None = event_dict.get("_record")
    if record is None:
        return event_dict
    for key, value in record.__dict__.items():
        if key not in _RECORD_ATTRIBUTES and key not in _DROPPED_EXTRAS and key[:1] != "_":
            event_dict.setdefault(key, value)
    return event_dict


def _render_exception(*, structured: bool) -> Processor:
    def render(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        exc_info = event_dict.pop("exc_info", None)
        exc = _exception_of(exc_info)
        if exc is not None:
            event_dict["exception"] = exception_dicts(exc) if structured else exception_text(exc)
        return event_dict

    return render


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) > 1 else None
    if exc_info:
        return sys.exc_info()[1]
    return None


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False
