"""What a visit of the plan contains: techniques in order, targets, pressure and
modifications (DOMAIN.md 2, 3 and 4), with the home program of ``home.py``.

Pure, like ``domain.py``: the intake in, plan parts out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from services.planner import fmm
from services.planner import knowledge as kb
from services.planner.home import home_for
from shared import body_map as bm
from shared.events.intake import Complaint, IntakeSubmitted
from shared.events.plans import HomeProgram, Modification, ProtocolStep, RationaleItem
from shared.vocabulary import Modality, PrecautionCode, Region

T = TypeVar("T")
ASSESS_FIRST = (
    "Visit 1: assess first (history, posture, range of motion, palpation; DOMAIN.md 3). "
    "Until an assessment names trigger points, the targets are the muscles that "
    "commonly refer to the complaint areas."
)


ASSESSED = "Targets are the trigger points the therapist's assessment found (DOMAIN.md 3)."


@dataclass(frozen=True)
class VisitProtocol:
    steps: list[ProtocolStep]
    modifications: list[Modification]
    home_program: HomeProgram
    rationale: list[RationaleItem]


def excluded_regions(intake: IntakeSubmitted) -> list[Region]:
    """DOMAIN.md 2: areas never worked on - screening's exclusions plus any
    contraindication that names a region (a local one, e.g. a skin condition)."""
    local = {c.region for c in intake.health.contraindications if c.region is not None}
    return bm.in_region_order({*intake.screening.excluded_regions, *local})


def target_regions(intake: IntakeSubmitted) -> list[Region]:
    """The complaint regions still treatable, the most painful first."""
    excluded = set(excluded_regions(intake))
    by_pain = sorted(intake.complaints, key=lambda c: -c.intensity)
    return _unique(c.region for c in by_pain if c.region not in excluded)


def target_muscles(regions: Sequence[Region], *, excluded: Iterable[Region]) -> list[str]:
    """DOMAIN.md 3: the muscles that commonly refer to the regions, leaving out
    any muscle that lies in an excluded area."""
    return _unique(
        muscle for _, muscles in bm.assess_first(regions, excluded=excluded) for muscle in muscles
    )


def pressure_target(precautions: Iterable[PrecautionCode], caps: Iterable[int] = ()) -> int:
    """DOMAIN.md 4: around 6/10, lowered to the strictest precaution's cap or other
    ``caps`` (a screening finding's, e.g. an older client's)."""
    return min([kb.PRESSURE_TARGET, *(kb.PRECAUTIONS[p].pressure_cap for p in precautions), *caps])


def assessed_muscles(found: Iterable[str], *, excluded: Iterable[Region]) -> list[str]:
    """DOMAIN.md 3: the assessment's trigger point muscles the body map knows, never
    one that lies in an excluded area."""
    out = list(excluded)
    named = (bm.muscle_named(name) for name in found)
    return _unique(m for m in named if m is not None and not bm.works_in_excluded(m, out))


def visit_protocol(
    intake: IntakeSubmitted,
    *,
    modality: Modality,
    assessed: Sequence[str] = (),
    limits: Sequence[str] = (),
    posture: Sequence[str] = (),
) -> VisitProtocol:
    """The protocol, modifications, home program and their reasons for an intake;
    ``assessed`` muscles (from the therapist's assessment) replace the referral table,
    and its range of motion ``limits`` and ``posture`` findings aim the stretches.
    FMM is its own method (``fmm.py``): regional patterns, not trigger points."""
    excluded = excluded_regions(intake)
    regions = target_regions(intake)
    muscles = list(assessed) or target_muscles(regions, excluded=excluded)
    codes = _unique(p.code for p in intake.health.precautions)
    findings = screening_findings(intake)
    caps = [f.pressure_cap for f in findings if f.pressure_cap is not None]
    lowered_by = [f.code for f in findings if f.pressure_cap is not None]
    pressure = pressure_target(codes, caps)
    too_painful = [
        c
        for c in intake.complaints
        if c.region in regions and c.intensity >= kb.TOO_PAINFUL_FOR_PRESSURE
    ]
    notes = {"warming_strokes": ASSESSED if assessed else ASSESS_FIRST}
    if too_painful:
        notes["positional_release"] = (
            f"First choice for {', '.join(_unique(c.region for c in too_painful))}: too "
            "painful for direct pressure; move on to pressure only as tolerated."
        )
    pressure_notes = [
        *(n for code in codes if (n := kb.PRECAUTIONS[code].pressure_note)),
        *(f.pressure_note for f in findings if f.pressure_note),
    ]
    for technique in kb.TECHNIQUES:
        if technique.direct_pressure and pressure_notes:
            notes[technique.code] = "; ".join(pressure_notes)
    if modality == "fmm":
        visit = fmm.fmm_visit(
            regions,
            excluded=excluded,
            precautions=codes,
            pressure=pressure,
            pressure_notes=pressure_notes,
            too_painful=_unique(c.region for c in too_painful),
        )
        steps = visit.steps
        how = [
            *visit.rationale,
            *_pressure_reasons([], codes, pressure=pressure, too_painful=(), also=lowered_by),
        ]
    else:
        steps = protocol_steps(
            _targets(regions, muscles, codes),
            pressure=pressure,
            notes=notes,
            holds=shorter_holds(codes),
        )
        how = [
            *_targets_and_order(regions, muscles, steps),
            *_pressure_reasons(
                muscles, codes, pressure=pressure, too_painful=too_painful, also=lowered_by
            ),
        ]
    home = home_for(
        intake, regions, modality=modality, excluded=excluded, limits=limits, posture=posture
    )
    return VisitProtocol(
        steps=steps,
        modifications=[
            m
            for m in modifications_for(codes, pressure=pressure, excluded=excluded, also=lowered_by)
            if m.code not in kb.ABOUT_HOLDS or any(s.hold_seconds for s in steps)
        ]
        + [Modification(code=f.code, detail=f.detail) for f in findings],
        home_program=home.program,
        rationale=[
            *how,
            *_care_reasons(codes, excluded),
            *(RationaleItem(rule=f.rule, detail=f.detail) for f in findings),
            *home.rationale,
        ],
    )


def protocol_steps(
    targets: dict[str, list[str]],
    *,
    pressure: int,
    notes: Mapping[str, str],
    holds: Mapping[str, tuple[int, int]] | None = None,
) -> list[ProtocolStep]:
    """DOMAIN.md 4: the NMT techniques in the catalogue's order (least to most
    aggressive, stretching last). A step with nothing to work on is left out.
    ``holds`` shortens a technique's hold (a precaution's gentler version)."""
    holds = holds or {}
    steps: list[ProtocolStep] = []
    for technique in kb.TECHNIQUES:
        step_targets = targets.get(technique.code, [])
        if not step_targets:
            continue
        steps.append(
            ProtocolStep(
                order=len(steps) + 1,
                technique=technique.code,
                targets=step_targets,
                hold_seconds=_hold(technique, holds),
                pressure_target=pressure if technique.direct_pressure else None,
                notes=f"{notes[technique.code]} ({technique.how})"
                if technique.code in notes
                else technique.how,
            )
        )
    return steps


@dataclass(frozen=True)
class Finding:
    """A screening finding (DOMAIN.md 1) as it changes the plan."""

    rule: str
    code: str
    detail: str
    pressure_note: str | None
    pressure_cap: int | None = None


def screening_findings(intake: IntakeSubmitted) -> list[Finding]:
    """DOMAIN.md 1: what screening found in the pain description itself (a red
    flag, nerve signs), each as the modification it makes to the plan."""
    found: list[Finding] = []
    for reason in intake.screening.reasons:
        rule = kb.FINDINGS.get(reason.code)
        if rule is None:
            continue
        where = reason.region.replace("_", " ") if reason.region else "treated area"
        words = {"where": where, "finding": reason.detail}
        found.append(
            Finding(
                rule=reason.rule,
                code=rule.modification,
                detail=rule.detail.format(**words),
                pressure_note=rule.pressure_note.format(**words) if rule.pressure_note else None,
                pressure_cap=rule.pressure_cap,
            )
        )
    return _unique(found)


def shorter_holds(codes: Iterable[PrecautionCode]) -> dict[str, tuple[int, int]]:
    """DOMAIN.md 2: the gentlest hold any precaution asks for, per technique."""
    holds: dict[str, tuple[int, int]] = {}
    for code in codes:
        for technique, (low, high) in kb.PRECAUTIONS[code].shorter_holds.items():
            was = holds.get(technique, (low, high))
            holds[technique] = (min(low, was[0]), min(high, was[1]))
    return holds


def modifications_for(
    codes: Sequence[PrecautionCode],
    *,
    pressure: int,
    excluded: Sequence[Region],
    also: Sequence[str] = (),
) -> list[Modification]:
    """DOMAIN.md 2: each precaution's modifications, the lowered pressure (by the
    precautions and ``also`` the findings that cap it), and the excluded areas."""
    found = [
        Modification(code=code, detail=detail)
        for precaution in codes
        for code, detail in kb.PRECAUTIONS[precaution].modifications
    ]
    if pressure < kb.PRESSURE_TARGET:
        found.append(
            Modification(
                code="lower_pressure",
                detail=f"pressure target {pressure}/10 instead of {kb.PRESSURE_TARGET}/10 "
                f"({', '.join([*codes, *also])})",
            )
        )
    found += [
        Modification(code="excluded_region", detail=f"no work on the {r}: local contraindication")
        for r in excluded
    ]
    return found


def _targets_and_order(
    regions: Sequence[Region], muscles: Sequence[str], steps: Sequence[ProtocolStep]
) -> list[RationaleItem]:
    referred = (
        f"{r} -> {', '.join(m for m in bm.REFERRERS[r] if m in muscles) or 'none'}" for r in regions
    )
    return [
        RationaleItem(
            rule="DOMAIN.md 3: assess the muscles that commonly refer to the complaint area",
            detail="; ".join(referred) + "; visit 1 assesses first",
        ),
        RationaleItem(
            rule="DOMAIN.md 4: least to most aggressive; warming first, stretching last",
            detail=" -> ".join(step.technique for step in steps),
        ),
    ]


def _pressure_reasons(
    muscles: Sequence[str],
    codes: Sequence[PrecautionCode],
    *,
    pressure: int,
    too_painful: Sequence[Complaint],
    also: Sequence[str] = (),
) -> list[RationaleItem]:
    reasons = [
        RationaleItem(
            rule="DOMAIN.md 4: pressure target 6-7/10, lower under precautions",
            detail=f"{', '.join([*codes, *also]) or 'no precautions'} -> {pressure}/10",
        )
    ]
    if too_painful:
        reasons.append(
            RationaleItem(
                rule="DOMAIN.md 4: positional release first where too painful for pressure",
                detail=", ".join(f"{c.region} at intensity {c.intensity}" for c in too_painful),
            )
        )
    pincers = [m for m in muscles if bm.MUSCLES[m].pincer]
    if pincers:
        blocked = any("pincer_compression" in kb.PRECAUTIONS[c].left_out for c in codes)
        outcome = "no pincer: blood-thinning medication (DOMAIN.md 2)" if blocked else "pincer"
        reasons.append(
            RationaleItem(
                rule="DOMAIN.md 4: pincer pressure where no bone lies beneath",
                detail=f"{', '.join(pincers)} -> {outcome}",
            )
        )
    return reasons


def _care_reasons(
    codes: Sequence[PrecautionCode], excluded: Sequence[Region]
) -> list[RationaleItem]:
    reasons = [
        RationaleItem(
            rule=f"DOMAIN.md 2: precaution {code}",
            detail="; ".join(detail for _, detail in kb.PRECAUTIONS[code].modifications),
        )
        for code in codes
    ]
    if excluded:
        reasons.append(
            RationaleItem(
                rule="DOMAIN.md 2: a local contraindication excludes that area, not the plan",
                detail=f"{', '.join(excluded)} excluded",
            )
        )
    return reasons


def _targets(
    regions: Sequence[Region], muscles: Sequence[str], codes: Sequence[PrecautionCode]
) -> dict[str, list[str]]:
    """Who each technique works on. Broad strokes work the areas; trigger point
    techniques work muscles; direct pressure avoids the areas a precaution rules
    out, and pincer is only for muscles with no bone beneath (DOMAIN.md 4)."""
    rules = [kb.PRECAUTIONS[code] for code in codes]
    no_pressure_in = {region for rule in rules for region in rule.no_direct_pressure_in}
    pressable = [m for m in muscles if bm.MUSCLES[m].lies_in.isdisjoint(no_pressure_in)]
    against_bone = [m for m in pressable if not bm.MUSCLES[m].pincer]
    pincer = [m for m in pressable if bm.MUSCLES[m].pincer]
    areas = bm.in_region_order({*regions, *(r for m in muscles for r in bm.MUSCLES[m].lies_in)})
    targets: dict[str, list[str]] = {
        "warming_strokes": [*areas],
        "myofascial_release": [*areas],
        "positional_release": list(muscles),
        "direct_manipulation": list(muscles),
        "pir_pnf": list(muscles),
        "ischemic_compression": against_bone,
        "sustained_pressure": list(against_bone),
        "pincer_compression": pincer,
        "cross_fiber_friction": pressable,
        # DOMAIN.md 4: a visit always ends by stretching, the areas when no muscle is workable
        "stretching": list(muscles) or [*areas],
    }
    left_out = {technique for rule in rules for technique in rule.left_out}
    return {code: [] if code in left_out else who for code, who in targets.items()}


def _hold(technique: kb.Technique, holds: Mapping[str, tuple[int, int]]) -> list[int] | None:
    if technique.hold_seconds is None:
        return None
    return list(holds.get(technique.code, technique.hold_seconds))


def _unique(items: Iterable[T]) -> list[T]:
    return list(dict.fromkeys(items))
