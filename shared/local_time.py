"""A moment as a client reads it: the location's wall clock, in the client's language.

Messages (``services/notifier/messages.py``) and the pages a message links to (the
scheduler's visit and offer pages) name a visit the same way, so both take their
wording from here. Pure: no locale (the process locale is not the client's), no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo


def language_of(tag: str | None) -> str:
    """The language of a language tag: ``es-MX`` -> ``es``; unknown or None -> ``en``."""
    primary = (tag or "").replace("_", "-").split("-")[0].strip().lower()
    return primary if primary in LANGUAGES else "en"


def when_local(moment: datetime, timezone: str, language: str) -> str:
    """``Tuesday, March 16 at 10:00 AM PDT`` / ``martes 16 de marzo a las 10:00 PDT``: the
    location's wall clock and the zone abbreviation in force at that instant."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a message time must be timezone-aware")
    return _FORMATS[language_of(language)](moment.astimezone(ZoneInfo(timezone)))


_DAYS_EN: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS_EN: Final = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_DAYS_ES: Final = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
_MONTHS_ES: Final = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
)  # fmt: skip


def _when_en(local: datetime) -> str:
    hour = local.hour % 12 or 12
    half = "AM" if local.hour < 12 else "PM"
    return (
        f"{_DAYS_EN[local.weekday()]}, {_MONTHS_EN[local.month - 1]} {local.day} "
        f"at {hour}:{local.minute:02d} {half} {_zone_name(local)}"
    )


def _when_es(local: datetime) -> str:
    article = "a la" if local.hour == 1 else "a las"
    return (
        f"{_DAYS_ES[local.weekday()]} {local.day} de {_MONTHS_ES[local.month - 1]} "
        f"{article} {local.hour}:{local.minute:02d} {_zone_name(local)}"
    )


def _zone_name(local: datetime) -> str:
    """``PDT``; zones without a letter abbreviation read ``UTC-03`` rather than a bare ``-03``."""
    name = local.tzname() or ""
    return f"UTC{name}" if name[:1] in ("+", "-") else name


_FORMATS: Final[dict[str, Callable[[datetime], str]]] = {"en": _when_en, "es": _when_es}
LANGUAGES: Final = tuple(_FORMATS)
"""The languages clients are written to; adding one means its date words here, and its
message templates and page texts."""

__all__ = ["LANGUAGES", "language_of", "when_local"]
