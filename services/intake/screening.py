"""Safety screening of an intake (DOMAIN.md sections 1 and 2).

Pure: the intake and ``today`` in, a ``Screening`` out. The clinical knowledge is
the tables below, one row per code, each naming the DOMAIN.md line it comes from;
the code only applies them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, TypeVar

from shared.events.intake import (
    Complaint,
    Contraindication,
    IntakeDocument,
    Screening,
    ScreeningReason,
)
from shared.vocabulary import (
    NERVE_SIGN_QUALITIES,
    ContraindicationCode,
    PrecautionCode,
    Quality,
    Region,
    ScreeningOutcome,
)

SEVERITY: Final[Mapping[ScreeningOutcome, int]] = {"clear": 0, "modify": 1, "defer": 2, "refer": 3}
"""Most severe wins: the outcome of a screening is its most severe reason."""

_T = TypeVar("_T")

LOWER_PRESSURE: Final = "lower pressure target than the usual 6-7 of 10 (DOMAIN.md 4)"


@dataclass(frozen=True)
class CodeRule:
    """What one contraindication or precaution code does to the plan."""

    rule: str
    action: ScreeningOutcome
    detail: str
    recheck_after: timedelta | None = None  # a deferral is re-checked after this
    recheck_from_since: bool = False  # count from the item's ``since`` date if given
    local: bool = False  # with a region: exclude only that region ("modify")
    modifications: tuple[str, ...] = ()


CONTRAINDICATION_RULES: Final[Mapping[ContraindicationCode, CodeRule]] = {
    "recent_surgery": CodeRule(
        rule="DOMAIN.md 2: recent surgery",
        action="defer",
        detail="recent surgery: no NMT until the recovery window has passed",
        recheck_after=timedelta(weeks=6),
        recheck_from_since=True,
    ),
    "acute_injury_inflammation": CodeRule(
        rule="DOMAIN.md 2: acute injury with inflammation",
        action="defer",
        detail="acute injury with inflammation: no NMT until the inflammation settles",
        recheck_after=timedelta(weeks=2),
        recheck_from_since=True,
    ),
    "malignancy": CodeRule(
        rule="DOMAIN.md 2: malignancy or undiagnosed lumps",
        action="refer",
        detail="malignancy: NMT is not performed; refer to the treating physician",
    ),
    "undiagnosed_lump": CodeRule(
        rule="DOMAIN.md 2: malignancy or undiagnosed lumps",
        action="refer",
        detail="undiagnosed lump: NMT is not performed; refer for a medical diagnosis",
    ),
    "dvt": CodeRule(
        rule="DOMAIN.md 2: deep vein thrombosis",
        action="refer",
        detail="deep vein thrombosis: NMT is not performed; refer to a physician",
    ),
    "severe_osteoporosis": CodeRule(
        rule="DOMAIN.md 2: severe osteoporosis",
        action="refer",
        detail="severe osteoporosis: NMT is not performed; refer to a physician",
    ),
    "acute_infection": CodeRule(
        rule="DOMAIN.md 2: acute infection",
        action="refer",
        detail="acute infection: NMT is not performed; refer to a physician",
    ),
    "skin_condition": CodeRule(
        rule="DOMAIN.md 2: certain skin conditions in the treatment area",
        action="defer",
        detail="skin condition: no direct work on the affected skin",
        recheck_after=timedelta(weeks=2),
        local=True,
    ),
}

PRECAUTION_RULES: Final[Mapping[PrecautionCode, CodeRule]] = {
    "pregnancy": CodeRule(
        rule="DOMAIN.md 2: pregnancy, especially the first trimester",
        action="modify",
        detail="pregnancy: positioning and pressure adapted",
        modifications=(
            "side-lying positioning (no prone work)",
            "no deep abdominal or low-back pressure in the first trimester",
            LOWER_PRESSURE,
        ),
    ),
    "varicose_veins": CodeRule(
        rule="DOMAIN.md 2: varicose veins",
        action="modify",
        detail="varicose veins: avoid direct work on them",
        modifications=("no direct pressure on or over varicose veins", LOWER_PRESSURE),
    ),
    "hypertension": CodeRule(
        rule="DOMAIN.md 2: hypertension",
        action="modify",
        detail="hypertension: treat with special care",
        modifications=("shorter, gentler ischemic compression holds", LOWER_PRESSURE),
    ),
    "blood_thinners": CodeRule(
        rule="DOMAIN.md 2: blood-thinning medication",
        action="modify",
        detail="blood-thinning medication: bruising risk",
        modifications=(
            "no deep friction or heavy sustained pressure (bruising risk)",
            LOWER_PRESSURE,
        ),
    ),
    "reduced_sensation_medication": CodeRule(
        rule="DOMAIN.md 2: medication that reduces sensation",
        action="modify",
        detail="medication that reduces sensation: the client cannot report pressure reliably",
        modifications=(
            "do not rely on the client's pressure reports; check in often and stay conservative",
            LOWER_PRESSURE,
        ),
    ),
}

ALL_REGIONS_EXCLUDED_DETAIL: Final = (
    "every complaint area has a skin condition: nothing can be treated until it clears"
)


@dataclass(frozen=True)
class RedFlagRule:
    """DOMAIN.md 1: a new dull pain that has not improved in 2-3 weeks -> see a doctor."""

    rule: str
    quality: Quality
    new_within: timedelta  # "new": started less than this long ago
    not_improved_after: timedelta  # flag once the pain is at least this old


RED_FLAG: Final = RedFlagRule(
    rule="DOMAIN.md 1: red flag, new dull pain not improved in 2-3 weeks",
    quality="dull",
    new_within=timedelta(weeks=13),  # ~3 months, the acute/chronic line of DOMAIN.md 1
    not_improved_after=timedelta(days=14),
)

# What the intake answer tells the front desk about a red flag (DOMAIN.md 1, seed 000:
# "bring it to a doctor's attention").
RED_FLAG_FRONT_DESK: Final = (
    "Ask the client to see their doctor about this pain before the course goes on: the "
    "first visit is an assessment only, and the other visits are booked once the "
    "therapist records the doctor's check."
)

NERVE_SIGNS_RULE: Final = (
    "DOMAIN.md 1: tingling, numbness, burning suggest nerve compression/entrapment"
)


def screen(document: IntakeDocument, *, today: date) -> Screening:
    """Screen an intake against the contraindication, precaution and red-flag tables."""
    reasons: list[ScreeningReason] = []
    excluded: list[Region] = []
    modifications: list[str] = []
    rechecks: list[date] = []

    for item in document.health.contraindications:
        rule = CONTRAINDICATION_RULES[item.code]
        if rule.local and item.region is not None:
            reasons.append(_reason(rule, item.code, "modify", item.detail, item.region))
            excluded.append(item.region)
            modifications.append(f"no work on the {_words(item.region)}: {rule.detail}")
            continue
        recheck = _recheck_on(rule, item, today)
        detail = rule.detail if recheck is None else f"{rule.detail}; re-check on {recheck}"
        reasons.append(_reason(rule, item.code, rule.action, item.detail, item.region, detail))
        if recheck is not None:
            rechecks.append(recheck)

    complaint_regions = {complaint.region for complaint in document.complaints}
    if excluded and complaint_regions <= set(excluded):
        rule = CONTRAINDICATION_RULES["skin_condition"]
        recheck = _recheck_on(rule, None, today)
        detail = ALL_REGIONS_EXCLUDED_DETAIL + (f"; re-check on {recheck}" if recheck else "")
        reasons.append(_reason(rule, "skin_condition", rule.action, None, None, detail))
        if recheck is not None:
            rechecks.append(recheck)

    for precaution in document.health.precautions:
        rule = PRECAUTION_RULES[precaution.code]
        reasons.append(_reason(rule, precaution.code, rule.action, precaution.detail, None))
        modifications.extend(rule.modifications)

    red_flags = [c for c in document.complaints if is_red_flag(c, today=today)]
    for complaint in red_flags:
        reasons.append(
            ScreeningReason(
                rule=RED_FLAG.rule,
                code="red_flag_new_dull_pain",
                action="modify",
                detail=(
                    f"new dull pain in the {_words(complaint.region)} not improving for "
                    f"{_age(complaint, today).days} days: recommend a medical check"
                ),
                region=complaint.region,
            )
        )

    for complaint in document.complaints:
        signs = sorted(NERVE_SIGN_QUALITIES.intersection(complaint.qualities))
        if signs:
            where = _words(complaint.region)
            reasons.append(
                ScreeningReason(
                    rule=NERVE_SIGNS_RULE,
                    code="nerve_signs",
                    action="modify",
                    detail=f"{', '.join(signs)} in the {where}: possible nerve compression",
                    region=complaint.region,
                )
            )
            modifications.append(
                f"{where}: assess for nerve entrapment; no sustained pressure that "
                "provokes tingling, numbness or burning"
            )

    outcome = most_severe(reason.action for reason in reasons)
    return Screening(
        outcome=outcome,
        reasons=reasons,
        excluded_regions=_unique(excluded),
        modifications=_unique(modifications),
        recheck_on=max(rechecks) if rechecks else None,
        referral_recommended=outcome == "refer" or bool(red_flags),
        medical_check_required=bool(red_flags),
        front_desk=[RED_FLAG_FRONT_DESK] if red_flags else [],
    )


def most_severe(actions: Iterable[ScreeningOutcome]) -> ScreeningOutcome:
    """The most severe action (refer > defer > modify > clear); clear when there is none."""
    return max(actions, key=SEVERITY.__getitem__, default="clear")


def is_red_flag(complaint: Complaint, *, today: date) -> bool:
    """DOMAIN.md 1: new dull pain, at least two weeks old, not improving."""
    if RED_FLAG.quality not in complaint.qualities or complaint.improving:
        return False
    age = _age(complaint, today)
    return RED_FLAG.not_improved_after <= age < RED_FLAG.new_within


def _age(complaint: Complaint, today: date) -> timedelta:
    if complaint.onset is not None:
        return today - complaint.onset
    return timedelta(weeks=complaint.duration_weeks or 0)


def _recheck_on(rule: CodeRule, item: Contraindication | None, today: date) -> date | None:
    """When a deferral is looked at again: never earlier than today."""
    if rule.recheck_after is None:
        return None
    since = item.since if item is not None and rule.recheck_from_since else None
    start = since if since is not None else today
    return max(start + rule.recheck_after, today)


def _reason(
    rule: CodeRule,
    code: str,
    action: ScreeningOutcome,
    client_detail: str | None,
    region: Region | None,
    detail: str | None = None,
) -> ScreeningReason:
    text = detail if detail is not None else rule.detail
    if client_detail:
        text = f"{text} (client: {client_detail})"
    return ScreeningReason(rule=rule.rule, code=code, action=action, detail=text, region=region)


def _words(region: Region) -> str:
    return region.replace("_", " ")


def _unique(items: Iterable[_T]) -> list[_T]:
    return list(dict.fromkeys(items))


__all__ = [
    "CONTRAINDICATION_RULES",
    "PRECAUTION_RULES",
    "RED_FLAG",
    "SEVERITY",
    "CodeRule",
    "RedFlagRule",
    "is_red_flag",
    "most_severe",
    "screen",
]
