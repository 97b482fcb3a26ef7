"""The home program the client leaves with (DOMAIN.md 6), held to the plan's own
precautions (DOMAIN.md 2) and the client's age (DOMAIN.md 5), its stretches aimed
at what the therapist found limited (DOMAIN.md 3). The rules are data
(``knowledge.HOME_RULES``, the body map's positions and movements). Every line
carries its stable code beside its English (``shared/home_texts.py``, where the
English is taken from), for the notifier to word in the client's language. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import get_args

from services.planner import knowledge as kb
from services.planner import pregnancy
from shared import body_map as bm
from shared import home_texts as texts
from shared.events.intake import IntakeSubmitted, Precaution
from shared.events.plans import HomeItem, HomeProgram, RationaleItem, Stretch
from shared.pain import age_on
from shared.vocabulary import Modality, PrecautionCode, Region

HOME_RULE = "DOMAIN.md 6: 2-3 stretches, self-massage, aftercare"
LIMITS_RULE = "DOMAIN.md 3: range of motion limits found at assessment"
POSTURE_RULE = "DOMAIN.md 3: posture findings at assessment"
ASSESSMENT_RULES = (LIMITS_RULE, POSTURE_RULE)


@dataclass(frozen=True)
class HomePlan:
    program: HomeProgram
    rationale: list[RationaleItem]


def home_for(
    intake: IntakeSubmitted,
    regions: Sequence[Region],
    *,
    modality: Modality,
    excluded: Sequence[Region] = (),
    limits: Sequence[str] = (),
    posture: Sequence[str] = (),
) -> HomePlan:
    """The home program for an intake's treated ``regions``, with the client's age on
    the intake's date; ``limits`` and ``posture`` are an assessment's findings."""
    born = intake.client.date_of_birth
    return home_plan(
        regions,
        modality=modality,
        precautions=intake.health.precautions,
        excluded=excluded,
        age=None if born is None else age_on(born, intake.submitted_at.date()),
        limits=limits,
        posture=posture,
    )


def home_plan(
    regions: Sequence[Region],
    *,
    modality: Modality,
    precautions: Sequence[Precaution] = (),
    excluded: Sequence[Region] = (),
    age: int | None = None,
    limits: Sequence[str] = (),
    posture: Sequence[str] = (),
) -> HomePlan:
    """DOMAIN.md 6: 2-3 stretches (first for each limited movement and posture finding,
    then each region's best in turn, never more than 3), a self-massage per region,
    and the aftercare advice - within what the precautions and age allow."""
    keys = home_rule_keys(precautions, age=age)
    rules = [kb.HOME_RULES[key] for key in keys]
    fit = _Fit(rules)
    codes = list(dict.fromkeys(p.code for p in precautions))
    restricted = _restricted(codes, keys, excluded)
    movements = bm.limited_movements(limits)
    postures = bm.posture_patterns(posture)
    found = [f for f in (*movements, *postures) if f.region not in excluded]
    sources = [(f.region, f.stretches) for f in found]
    sources += [(r, bm.STRETCHES_FOR[r]) for r in regions]
    picked, swapped = _pick(sources, fit)
    massaged = [r for r in regions if r not in restricted]
    advice = [*kb.AFTERCARE, *(kb.FMM_AFTERCARE if modality == "fmm" else ())]
    advice += [code for p in codes for code in kb.PRECAUTIONS[p].advice]
    advice += [code for rule in rules for code in rule.advice]
    items = [HomeItem(code=code) for code in advice]
    items += [HomeItem(code=texts.NO_SELF_MASSAGE_UNTIL_CLEARED, region=r) for r in excluded]
    items += [
        HomeItem(code=texts.NO_SELF_MASSAGE_BECAUSE, region=r, reasons=why)
        for r, why in restricted.items()
        if r in regions
    ]
    self_massage, self_massage_items = _in_english(fit.self_massage(r) for r in massaged)
    advice_lines, advice_items = _in_english(items)
    program = HomeProgram(
        stretches=[
            Stretch(name=n, region=r, how=bm.STRETCHES[n], code=bm.STRETCH_CODES[n])
            for n, r in picked.items()
        ],
        self_massage=self_massage,
        advice=advice_lines,
        self_massage_items=self_massage_items,
        advice_items=advice_items,
    )
    rationale = [
        RationaleItem(
            rule=HOME_RULE,
            detail=", ".join(picked)
            + (f"; self-massage for {', '.join(massaged)}" if massaged else "; no self-massage"),
        ),
    ]
    for key, rule in zip(keys, rules, strict=True):
        reason = _rule_reason(
            key, rule, restricted=restricted, swapped=swapped, regions=regions, massaged=massaged
        )
        rationale += [] if reason is None else [reason]
    if limits:
        unknown = sum(1 for text in limits if not bm.limited_movements([text]))
        rationale.append(_found_reason(LIMITS_RULE, movements, unknown, picked, fit, excluded))
    if posture:
        unknown = sum(1 for text in posture if not bm.posture_patterns([text]))
        rationale.append(_found_reason(POSTURE_RULE, postures, unknown, picked, fit, excluded))
    return HomePlan(program=program, rationale=rationale)


def _pick(
    sources: Sequence[tuple[Region, tuple[str, ...]]], fit: _Fit
) -> tuple[dict[str, Region], dict[str, str]]:
    """DOMAIN.md 6: 2-3 stretches, each source's best in turn, as the rules allow;
    with the stretches the rules ruled out and the versions given instead."""
    fewest, most = kb.STRETCHES_PER_PLAN
    wanted = min(most, max(fewest, len(sources)))
    picked: dict[str, Region] = {}
    swapped: dict[str, str] = {}
    for i in range(max((len(options) for _, options in sources), default=0)):
        for region, options in sources:
            if i >= len(options) or len(picked) >= wanted:
                continue
            name = fit.stretch(options[i])
            if name is not None and name not in picked:
                picked[name] = region
                if name != options[i]:
                    swapped[options[i]] = name
    return picked, swapped


def home_rules(precautions: Sequence[Precaution], *, age: int | None) -> list[kb.HomeRule]:
    """The home program rules that apply, in the table's order."""
    return [kb.HOME_RULES[key] for key in home_rule_keys(precautions, age=age)]


def home_rule_keys(precautions: Sequence[Precaution], *, age: int | None) -> list[str]:
    """The keys of the home program rules that apply, in the table's order: each
    precaution's, pregnancy's after the first trimester (an unstated stage counts as
    after), and an older client's."""
    applying: set[str] = {p.code for p in precautions}
    if any(pregnancy.after_first_trimester(p.detail) for p in precautions if p.code == "pregnancy"):
        applying.add("pregnancy_after_first_trimester")
    if age is not None and age >= kb.OLDER_ADULT_AGE:
        applying.add("older_adult")
    return [key for key in kb.HOME_RULES if key in applying]


class _Fit:
    """What the applying rules allow: a stretch or its seated or standing version,
    the usual or the gentle self-massage."""

    def __init__(self, rules: Sequence[kb.HomeRule]) -> None:
        self.avoid = frozenset(p for rule in rules for p in rule.avoid_positions)
        self.no_head_down = any(rule.no_head_down for rule in rules)
        self.gentle = any(rule.gentle_self_massage for rule in rules)

    def allows(self, stretch: str) -> bool:
        if self.no_head_down and stretch in bm.HEAD_DOWN_STRETCHES:
            return False
        return bm.STRETCH_POSITIONS[stretch] not in self.avoid

    def stretch(self, name: str) -> str | None:
        """``name``, else its alternative when allowed, else None."""
        if self.allows(name):
            return name
        other = bm.STRETCH_ALTERNATIVES.get(name)
        return other if other is not None and self.allows(other) else None

    def gentle_for(self, region: Region) -> bool:
        return self.gentle or bm.SELF_MASSAGE_POSITIONS[region] in self.avoid

    def self_massage(self, region: Region) -> HomeItem:
        gentle = self.gentle_for(region)
        code = texts.GENTLE_SELF_MASSAGE_ITEM if gentle else texts.SELF_MASSAGE_ITEM
        return HomeItem(code=code, region=region)


def _in_english(items: Iterable[HomeItem]) -> tuple[list[str], list[HomeItem]]:
    """Each line once, in English, with its item beside it."""
    lines: dict[str, HomeItem] = {}
    for item in items:
        line = texts.item_text(item.code, "en", region=item.region, reasons=item.reasons)
        if line is None:
            raise KeyError(f"shared/home_texts.py has no {item.code!r}")
        lines.setdefault(line, item)
    return list(lines), list(lines.values())


def _restricted(
    codes: Sequence[PrecautionCode], keys: Sequence[str], excluded: Sequence[Region]
) -> dict[Region, list[str]]:
    """Areas with no self-massage, and why (the precautions' codes and the home rules'
    keys): where a precaution rules out direct pressure (DOMAIN.md 2) or a home rule
    says so; excluded areas are told apart."""
    why: dict[Region, list[str]] = {}
    for code in codes:
        for region in sorted(kb.PRECAUTIONS[code].no_direct_pressure_in):
            why.setdefault(region, []).append(code)
    for key in keys:
        for region in sorted(kb.HOME_RULES[key].no_self_massage_on):
            why.setdefault(region, []).append(key)
    return {r: _unique(w) for r, w in why.items() if r not in excluded}


def _rule_reason(
    key: str,
    rule: kb.HomeRule,
    *,
    restricted: dict[Region, list[str]],
    swapped: dict[str, str],
    regions: Sequence[Region],
    massaged: Sequence[Region],
) -> RationaleItem | None:
    """What one rule asks of the home program and what it changed in this one; None
    when it changed nothing and adds no advice."""
    positions = [_words(p) for p in get_args(bm.Position) if p in rule.avoid_positions]
    areas = [_words(r) for r in get_args(Region) if r in rule.no_self_massage_on]
    asks = [f"no {_or(positions)} stretches"] if positions else []
    asks += ["no head-down stretches"] if rule.no_head_down else []
    asks += [f"no self-massage on the {_or(areas)}"] if areas else []
    asks += ["gentle self-massage"] if rule.gentle_self_massage else []
    changed = [
        f"{now} instead of {was}" for was, now in swapped.items() if not _Fit([rule]).allows(was)
    ]
    changed += [
        f"no self-massage on the {_words(r)}"
        for r, why in restricted.items()
        if key in why and r in regions
    ]
    changed += (
        ["the gentle self-massage, seated or standing"]
        if rule.gentle_self_massage and massaged
        else []
    )
    if not changed and not rule.advice:
        return None
    detail = "; ".join(asks) + (f" - here: {', '.join(changed)}" if changed else "")
    return RationaleItem(rule=f"{rule.section}: home program with {rule.why}", detail=detail)


def _found_reason(
    rule: str,
    found: Sequence[bm.Limitation],
    unknown: int,
    picked: dict[str, Region],
    fit: _Fit,
    excluded: Sequence[Region],
) -> RationaleItem:
    """Which stretches of the program now work on each finding, and what is left out."""
    parts = []
    for finding in found:
        if finding.region in excluded:
            parts.append(f"{finding.name}: not stretched, the {_words(finding.region)} is excluded")
            continue
        aimed = [s for s in (fit.stretch(o) for o in finding.stretches) if s in picked]
        names = ", ".join(_unique(aimed)) or f"no room (at most {kb.STRETCHES_PER_PLAN[1]})"
        parts.append(f"{finding.name} -> {names}")
    if unknown:
        parts.append(f"{unknown} not recognised")
    return RationaleItem(rule=rule, detail="; ".join(parts))


def _or(words: Sequence[str]) -> str:
    return " or ".join(w for w in [", ".join(words[:-1]), *words[-1:]] if w)


def _words(code: str) -> str:
    return code.replace("_", " ")


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
