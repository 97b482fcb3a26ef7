"""A plan's home program as the client reads it, in the client's language.

The plan events carry each stretch, self-massage and advice line as a stable code
beside its English (shared/events/plans.py ``HomeProgram``); the words come from the
one catalog, ``shared/home_texts.py``, at send time, so a client who changed language
after the plan reads the new one. The event's English is used only for a code the
catalog lacks (a newer planner's) or a plan remembered before the codes existed.
Pure: the remembered home program (JSON) and a message language in, texts out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from services.notifier.messages import StretchText
from shared import home_texts as texts

# The aftercare every client gets (water, soreness, movement) and the FMM breathing
# practice: the aftercare templates say them in their own words, so the plan's lines
# are not repeated (services/planner/knowledge.py AFTERCARE, FMM_AFTERCARE).
TOLD_BY_THE_TEMPLATES: Final = frozenset(
    {
        "drink_water",
        "soreness_is_normal",
        "gentle_movement",
        "sigh_of_relief_practice",
        "release_practice",
    }
)


@dataclass(frozen=True)
class HomeWords:
    stretches: list[StretchText]
    self_massage: list[str]
    advice: list[str]  # what the client's own precautions, age and areas call for


def home_words(home: Mapping[str, Any], language: str) -> HomeWords:
    """The stretches with how-to, the self-massage and the advice beyond what the
    templates say, of a remembered ``home_program``, in ``language`` (``en``/``es``)."""
    stretches = []
    for stretch in home.get("stretches", []):
        said = texts.stretch_text(stretch.get("code"), language)
        name, how = said if said is not None else (stretch["name"], stretch["how"])
        stretches.append(StretchText(name=name, how=how))
    items, lines = home.get("advice_items") or [], home.get("advice") or []
    # a plan remembered without codes gives no advice: its lines are English and
    # repeat what the templates say
    advice = (
        [
            line
            for item, line in zip(items, _lines(items, lines, language), strict=True)
            if item["code"] not in TOLD_BY_THE_TEMPLATES
        ]
        if len(items) == len(lines)
        else []
    )
    return HomeWords(
        stretches=stretches,
        self_massage=_lines(home.get("self_massage_items"), home.get("self_massage"), language),
        advice=advice,
    )


def _lines(
    items: Sequence[Mapping[str, Any]] | None, english: Sequence[str] | None, language: str
) -> list[str]:
    """Each item's line in ``language``, else the English line beside it; the English
    lines as they are when the items are missing or do not match them one for one."""
    english = list(english or [])
    if not items or len(items) != len(english):
        return english
    return [
        texts.item_text(
            item["code"], language, region=item.get("region"), reasons=item.get("reasons") or ()
        )
        or line
        for item, line in zip(items, english, strict=True)
    ]
