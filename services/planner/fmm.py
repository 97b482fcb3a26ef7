"""An FMM visit: Functional Muscle Manipulation as its own method (DOMAIN.md 4, seed 004).

Seed 004: FMM "views muscle contractions as regional defensive patterns rather than
isolated trigger points". The visit works each complaint's regional pattern
(``knowledge.FMM_PATTERNS``) from the deep muscles beside the spine, with the client
breathing, sensing and releasing it, in the order of ``knowledge.FMM_STEPS``. The
plan's precautions still hold: the pressure target, the excluded areas, the areas a
precaution keeps pressure off, and the techniques it leaves out.

Pure: the plan's parts in, steps and their reasons out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from services.planner import knowledge as kb
from shared import body_map as bm
from shared.events.plans import ProtocolStep, RationaleItem
from shared.vocabulary import PrecautionCode, Region

T = TypeVar("T")
PATTERN_RULE = (
    "DOMAIN.md 4: FMM works regional defensive patterns, not isolated trigger points (seed 004)"
)
ORDER_RULE = "DOMAIN.md 4: FMM is participatory: breathe, sense, release, self-regulate (seed 004)"
ASSESS_FIRST = (
    "Visit 1: assess first (history, posture, range of motion, palpation; DOMAIN.md 3), "
    "reading the region's defensive pattern"
)


@dataclass(frozen=True)
class FmmVisit:
    steps: list[ProtocolStep]
    rationale: list[RationaleItem]


def patterns_for(regions: Iterable[Region]) -> list[kb.FmmPattern]:
    """The defensive patterns the complaint regions are worked as, in table order."""
    chosen = set(regions)
    return [p for p in kb.FMM_PATTERNS if p.serves & chosen]


def fmm_visit(
    regions: Sequence[Region],
    *,
    excluded: Iterable[Region],
    precautions: Sequence[PrecautionCode],
    pressure: int,
    pressure_notes: Sequence[str] = (),
    too_painful: Sequence[Region] = (),
) -> FmmVisit:
    """The FMM visit for the treatable complaint ``regions``: each step of
    ``knowledge.FMM_STEPS`` with what it works on. A hands-on step carries the pressure
    target and the pressure notes, and never works an excluded area or one a precaution
    keeps direct pressure off; a step with nothing left to work on is left out."""
    out = set(excluded)
    rules = [kb.PRECAUTIONS[code] for code in precautions]
    no_pressure_in = {region for rule in rules for region in rule.no_direct_pressure_in}
    left_out = {technique for rule in rules for technique in rule.left_out}
    patterns = patterns_for(regions)
    areas = bm.in_region_order(
        r for r in {*regions, *(a for p in patterns for a in p.areas)} if r not in out
    )
    spine = _unique(
        m for p in patterns for m in p.spine if not bm.works_in_excluded(m, [*out, *no_pressure_in])
    )
    works: Mapping[str, list[str]] = {
        "pattern": list(areas),
        "spine": spine,
        "client": [],
    }
    notes = _notes(pressure_notes, too_painful)
    steps: list[ProtocolStep] = []
    for step in kb.FMM_STEPS:
        if step.code in left_out:
            continue
        targets = list(works[step.works])
        if step.hands_on:
            targets = [t for t in targets if t not in no_pressure_in]
        if step.works != "client" and not targets:
            continue
        note = ASSESS_FIRST if not steps else notes if step.hands_on else None
        steps.append(
            ProtocolStep(
                order=len(steps) + 1,
                technique=step.code,
                targets=targets,
                pressure_target=pressure if step.hands_on else None,
                notes=f"{note} ({step.how})" if note else step.how,
            )
        )
    return FmmVisit(steps=steps, rationale=_rationale(regions, patterns, areas, spine, steps))


def _notes(pressure_notes: Sequence[str], too_painful: Sequence[Region]) -> str | None:
    gentle = (
        [f"gentle in the {', '.join(too_painful)}: too painful for direct pressure (DOMAIN.md 4)"]
        if too_painful
        else []
    )
    return "; ".join([*gentle, *pressure_notes]) or None


def _rationale(
    regions: Sequence[Region],
    patterns: Sequence[kb.FmmPattern],
    areas: Sequence[Region],
    spine: Sequence[str],
    steps: Sequence[ProtocolStep],
) -> list[RationaleItem]:
    served = "; ".join(
        f"{', '.join(r for r in regions if r in p.serves)} -> the {p.name} pattern"
        for p in patterns
    )
    return [
        RationaleItem(
            rule=PATTERN_RULE,
            detail=f"{served}: {', '.join(areas)} worked as one region from the deep muscles "
            f"beside the spine ({', '.join(spine) or 'none workable'}); visit 1 assesses first",
        ),
        RationaleItem(rule=ORDER_RULE, detail=" -> ".join(step.technique for step in steps)),
    ]


def _unique(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))
