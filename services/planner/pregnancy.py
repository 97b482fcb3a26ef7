"""How far along a pregnancy is, from a precaution's free text (DOMAIN.md 2:
pregnancy, "especially the first trimester"). Pure."""

from __future__ import annotations

import re

from services.planner import knowledge as kb

_ORDINALS = {"first": 1, "1st": 1, "one": 1, "second": 2, "2nd": 2, "two": 2}
_ORDINALS |= {"third": 3, "3rd": 3, "three": 3, "1": 1, "2": 2, "3": 3}
_TRIMESTER = re.compile(
    r"\b(?:(first|1st|second|2nd|third|3rd)\s+trimester"
    r"|trimester\s*(one|two|three|[123])\b|t([123])\b)"
)
# "after the first trimester" is the second
_AFTER = re.compile(r"\b(?:after|past|post|beyond|end of)\s+(?:the\s+)?$")
# "24 weeks", "24+3 weeks", "12w", "week 24", and the obstetric "24/40"
_WEEKS = re.compile(
    r"\b(\d{1,2})\s*(?:\+\s*\d\s*)?(?:weeks?|wks?|w)\b|\b(?:weeks?|wks?)\s*(\d{1,2})\b"
    r"|\b(\d{1,2})\s*/\s*40\b"
)
_MONTHS = re.compile(r"\b(\d)\s*(?:months?|mos?)\b")


def trimester_of(detail: str | None) -> int | None:
    """The trimester a precaution's free text states ("second trimester", "T2",
    "after the first trimester", "24 weeks", "week 24", "5 months"); the latest when
    it states several, None when it states none."""
    text = (detail or "").lower()
    found = []
    for m in _TRIMESTER.finditer(text):
        stated = _ORDINALS[next(g for g in m.groups() if g)]
        found.append(min(3, stated + 1) if _AFTER.search(text[: m.start()]) else stated)
    weeks = [int(next(g for g in m.groups() if g)) for m in _WEEKS.finditer(text)]
    weeks += [int(m.group(1)) * 52 // 12 for m in _MONTHS.finditer(text)]
    found += [_trimester_at(w) for w in weeks]
    return max(found, default=None)


def after_first_trimester(detail: str | None) -> bool:
    """DOMAIN.md 2: past the first trimester, or at a stage the text does not state."""
    trimester = trimester_of(detail)
    return trimester is None or trimester > 1


def _trimester_at(week: int) -> int:
    if week <= kb.FIRST_TRIMESTER_LAST_WEEK:
        return 1
    return 2 if week <= kb.SECOND_TRIMESTER_LAST_WEEK else 3
