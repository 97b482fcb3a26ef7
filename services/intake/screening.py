"""Safety screening of an intake (DOMAIN.md sections 1 and 2).

Pure: the intake and ``today`` in, a ``Screening`` out. The clinical knowledge is
the tables below, one row per code or question, each naming the DOMAIN.md line it
comes from; the code only applies them. What the front desk must ask or tell the
client is in ``Screening.front_desk``, in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, TypeVar

from shared.events.intake import (
    Complaint,
    Contraindication,
    Health,
    IntakeDocument,
    Screening,
    ScreeningReason,
)
from shared.pain import OLDER_ADULT_AGE, age_on
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

Answer = tuple[str, ...]
"""Where an answer lies in ``Health``: ``("dvt_signs", "calf_swelling")``."""


@dataclass(frozen=True)
class Question:
    ask: str  # as the front desk asks it
    yes: str  # what a yes means, in the reason's words


@dataclass(frozen=True)
class Finding:
    """The reason screening gives for how a rule's questions were answered.
    ``detail`` may name ``{age}`` (the client's age) and ``{yes}`` (what was answered
    yes)."""

    code: str
    action: ScreeningOutcome
    detail: str
    front_desk: str | None = None  # what the front desk is told (before any open question)
    recheck_after: timedelta | None = None  # a deferral is looked at again after this
    modifications: tuple[str, ...] = ()  # for the therapist, as a precaution's


@dataclass(frozen=True)
class QuestionRule:
    """Questions a safe intake must have answered (DOMAIN.md 2). They are asked when a
    complaint lies in one of ``regions``, when the client is ``from_age`` or older, or
    when one of the ``signs`` is answered yes; a contraindication in ``settled_by``
    already answers them. Any yes gives ``yes``, every answer no gives ``no``, and
    otherwise ``unanswered``, with the open questions for the front desk to ask.
    ``before_submit``: an intake session is not complete while they are open."""

    rule: str
    questions: Mapping[Answer, Question]
    unanswered: Finding
    yes: Finding
    no: Finding
    regions: frozenset[Region] = frozenset()
    from_age: int | None = None
    signs: frozenset[Answer] = frozenset()
    settled_by: frozenset[ContraindicationCode] = frozenset()
    before_submit: bool = False


DVT_SWELLING: Final[Answer] = ("dvt_signs", "calf_swelling")
DVT_WARMTH: Final[Answer] = ("dvt_signs", "calf_warmth_redness")
DVT_JOURNEY: Final[Answer] = ("dvt_signs", "long_journey_recent")
OSTEOPOROSIS: Final[Answer] = ("osteoporosis",)

QUESTION_RULES: Final[tuple[QuestionRule, ...]] = (
    # DOMAIN.md 2: deep vein thrombosis is a contraindication [002]; calf pain with a
    # recent swelling, warmth or redness, or after a long journey, may be one. Asked for
    # a complaint in the lower leg ("leg", the calf's region: thigh and knee are their
    # own) or a swollen or warm calf; cleared only when every answer is no.
    QuestionRule(
        rule="DOMAIN.md 2: deep vein thrombosis",
        questions={
            DVT_SWELLING: Question("Has the calf swollen up lately?", "a swollen calf"),
            DVT_WARMTH: Question("Is the calf warm or red to the touch?", "a warm or red calf"),
            DVT_JOURNEY: Question(
                "Has the client had a long journey (a flight or a long drive) or bed rest "
                "in the last few weeks?",
                "a recent long journey",
            ),
        },
        unanswered=Finding(
            code="dvt_questions",
            action="defer",
            detail="calf pain: the DVT questions (swelling, warmth or redness, a recent long "
            "journey) are not answered; no NMT until they are",
            front_desk="Ask the client these DVT questions and submit the intake again with "
            "the answers (health.dvt_signs); nothing is booked until then:",
            recheck_after=timedelta(0),  # as soon as the answers are in
        ),
        yes=Finding(
            code="dvt_signs",
            action="refer",
            detail="DVT questions answered yes ({yes}): possibly a deep vein thrombosis; "
            "NMT is not performed; refer to a physician promptly",
            front_desk="Ask the client to see a physician promptly: the calf may have a "
            "blood clot (DVT). No treatment is booked.",
        ),
        no=Finding(
            code="dvt_questions_answered",
            action="clear",
            detail="calf pain: the DVT questions are answered no (no swelling, warmth or "
            "redness, no recent long journey)",
        ),
        regions=frozenset({"leg"}),
        signs=frozenset({DVT_SWELLING, DVT_WARMTH}),
        settled_by=frozenset({"dvt"}),
        before_submit=True,  # unanswered, the plan is deferred: ask them while entering it
    ),
    # DOMAIN.md 2: severe osteoporosis is a contraindication; DOMAIN.md 5: age is a
    # personal factor [002]. An older client (shared/pain.py OLDER_ADULT_AGE) is asked
    # about osteoporosis, and the pressure is gentler (the planner's FINDINGS, by code).
    QuestionRule(
        rule="DOMAIN.md 2: severe osteoporosis; DOMAIN.md 5: personal factors (age)",
        questions={
            OSTEOPOROSIS: Question(
                "Has a doctor told the client they have osteoporosis (thinning bones)?",
                "osteoporosis",
            ),
        },
        unanswered=Finding(
            code="osteoporosis_unanswered",
            action="modify",
            detail="aged {age}: whether the client has osteoporosis is not answered; "
            "gentle pressure until it is",
            modifications=(
                "gentle pressure until the osteoporosis question is answered",
                LOWER_PRESSURE,
            ),
            front_desk="Ask the client this question and tell the therapist the answer; "
            "until it is answered the pressure is gentle:",
        ),
        yes=Finding(
            code="osteoporosis",
            action="modify",
            detail="osteoporosis: gentle pressure, nothing heavy against bone (severe "
            "osteoporosis is not treated)",
            modifications=("osteoporosis: nothing heavy against bone", LOWER_PRESSURE),
        ),
        no=Finding(
            code="older_adult",
            action="modify",
            detail="aged {age}, no osteoporosis: gentler pressure with age",
            modifications=(LOWER_PRESSURE,),
        ),
        from_age=OLDER_ADULT_AGE,
        signs=frozenset({OSTEOPOROSIS}),
        settled_by=frozenset({"severe_osteoporosis"}),
    ),
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

    front_desk = [RED_FLAG_FRONT_DESK] if red_flags else []
    for asked in questions_for(document, today=today):
        reasons.append(asked.reason)
        front_desk.extend(asked.front_desk)
        modifications.extend(asked.modifications)
        if asked.recheck_on is not None:
            rechecks.append(asked.recheck_on)

    outcome = most_severe(reason.action for reason in reasons)
    return Screening(
        outcome=outcome,
        reasons=reasons,
        excluded_regions=_unique(excluded),
        modifications=_unique(modifications),
        recheck_on=max(rechecks) if rechecks else None,
        referral_recommended=outcome == "refer" or bool(red_flags),
        medical_check_required=bool(red_flags),
        front_desk=front_desk,
    )


@dataclass(frozen=True)
class Asked:
    """A question rule that applies to an intake: the reason its answers give, the
    questions still open, and what the front desk is told."""

    reason: ScreeningReason
    open_questions: list[tuple[Answer, str]]  # (where the answer goes, the question)
    front_desk: list[str]
    recheck_on: date | None
    modifications: tuple[str, ...] = ()
    before_submit: bool = False


def questions_for(document: IntakeDocument, *, today: date | None) -> list[Asked]:
    """The question rules (``QUESTION_RULES``) that apply to ``document``, each with
    what its answers make of the intake. Without ``today`` the client's age is not
    known, and no rule is asked by age."""
    declared = {item.code for item in document.health.contraindications}
    dob = document.client.date_of_birth
    age = age_on(dob, today) if dob is not None and today is not None else None
    regions = [complaint.region for complaint in document.complaints]
    asked: list[Asked] = []
    for rule in QUESTION_RULES:
        answers = {path: answer(document.health, path) for path in rule.questions}
        in_region = [region for region in regions if region in rule.regions]
        raised = (
            bool(in_region)
            or (rule.from_age is not None and age is not None and age >= rule.from_age)
            or any(answers.get(sign) is True for sign in rule.signs)
        )
        if not raised or rule.settled_by & declared:
            continue
        yes = [rule.questions[path].yes for path, value in answers.items() if value is True]
        still_open = [
            (path, rule.questions[path].ask) for path, value in answers.items() if value is None
        ]
        found = rule.yes if yes else rule.unanswered if still_open else rule.no
        open_questions = still_open if found is rule.unanswered else []
        asked.append(
            Asked(
                reason=ScreeningReason(
                    rule=rule.rule,
                    code=found.code,
                    action=found.action,
                    detail=found.detail.format(age=age, yes=", ".join(yes)),
                    region=in_region[0] if in_region else None,
                ),
                open_questions=open_questions,
                front_desk=[
                    *([found.front_desk] if found.front_desk else []),
                    *(question for _, question in open_questions),
                ],
                recheck_on=None
                if found.recheck_after is None or today is None
                else today + found.recheck_after,
                modifications=found.modifications,
                before_submit=rule.before_submit,
            )
        )
    return asked


def answer(health: Health, path: Answer) -> bool | None:
    """The client's answer at ``path`` in the health section; None when not answered."""
    value: object = health
    for name in path:
        value = getattr(value, name)
    return value if isinstance(value, bool) else None


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
    "QUESTION_RULES",
    "RED_FLAG",
    "SEVERITY",
    "Asked",
    "CodeRule",
    "Finding",
    "Question",
    "QuestionRule",
    "RedFlagRule",
    "answer",
    "is_red_flag",
    "most_severe",
    "questions_for",
    "screen",
]
