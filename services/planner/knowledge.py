"""The clinical knowledge the planner applies, as data (STYLE.md 3).

Each table names the DOMAIN.md section it comes from. These are the defaults
DOMAIN.md gives; a clinic that disagrees changes a number here, never an ``if``
in ``domain.py``. The body map (which muscles refer where, stretches,
self-massage) lives in ``shared/body_map.py`` and the acute/chronic rule in
``shared/pain.py``: intake applies them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from shared.body_map import Position
from shared.pain import CHRONIC_AFTER_MONTHS as CHRONIC_AFTER_MONTHS
from shared.pain import CHRONIC_AFTER_WEEKS as CHRONIC_AFTER_WEEKS
from shared.pain import OLDER_ADULT_AGE as OLDER_ADULT_AGE
from shared.vocabulary import Condition, Modality, PrecautionCode, Region


@dataclass(frozen=True)
class Course:
    """A course of treatment for one condition (DOMAIN.md 5)."""

    sessions: tuple[int, int]
    max_per_week: int  # the 1-2 per week of the table
    weeks: tuple[int, int]  # how long the 1-2 per week part lasts
    step_down_weeks: int  # chronic: weekly visits between twice weekly and the taper
    taper_sessions: int  # chronic: visits every two weeks at the end


# DOMAIN.md 5: acute 3-5 sessions, 1-2/week for 2-3 weeks; chronic 6-12 sessions,
# 1-2/week for 3-6 weeks, then tapering to every two weeks.
COURSES: Final[dict[Condition, Course]] = {
    "acute": Course(
        sessions=(3, 5), max_per_week=2, weeks=(2, 3), step_down_weeks=0, taper_sessions=0
    ),
    "chronic": Course(
        sessions=(6, 12), max_per_week=2, weeks=(3, 6), step_down_weeks=2, taper_sessions=2
    ),
}


@dataclass(frozen=True)
class Cadence:
    name: str
    per_week: float
    interval_days: int


# DOMAIN.md 5: the three cadences of a course. Twice weekly is every 3-4 days, which
# also keeps visits for the same area outside the 24-48 h soreness window.
TWICE_WEEKLY: Final = Cadence("twice weekly", per_week=2, interval_days=3)
WEEKLY: Final = Cadence("weekly", per_week=1, interval_days=7)
EVERY_TWO_WEEKS: Final = Cadence("every two weeks", per_week=0.5, interval_days=14)

# DOMAIN.md 5: soreness lasts 24-48 h, so visits are at least two days apart.
SORENESS_GAP_DAYS: Final = 2

# DOMAIN.md 5: expect significant relief within 4-14 days, with up to 4 sessions
# (seed 003: "Patients should expect significant relief as a result from these
# treatments within a period of 4-14 days. Within this time span, patients may have up
# to 4 treatment sessions"); no meaningful improvement by then is a reason to re-assess
# or refer. Every course, acute or chronic, is reviewed after REVIEW_AFTER_SESSIONS
# visits of its version or on its review date, whichever comes first (progress.py,
# reviews.py), and judged again when its last session is done.
REVIEW_AFTER_SESSIONS: Final = 4
REVIEW_WITHIN_DAYS: Final = 14
# A revised version's review date leaves its first visit this much room after that
# visit's place in the cadence (a visit moved a few days), so a version whose visits
# are two weeks apart is not found with nothing to judge before its first one.
FIRST_VISIT_ROOM_DAYS: Final = 7

# What the review point measures (DOMAIN.md 5, "progress is measured, not assumed"):
# improvement = (pain carried into the first visit - the latest pain reading after it)
# / the first. A reading is the pain carried into a visit (pain_before) or the pain a
# client reports at a check-in between visits (checkin.replied), in time order
# (trajectory.py): both say what lasted. The relief right after a session (pain_after)
# does not last, so it is not the measure.
MEANINGFUL_IMPROVEMENT: Final = 0.30  # below this at the review: re-assess, then refer
GOOD_PROGRESS: Final = 0.50  # at or above this at the review: taper sooner
GOALS_MET_PAIN: Final = 1  # the client walks in with pain at or below this: goals met
POOR_REVIEWS_BEFORE_REFERRAL: Final = 1  # one re-assessment, then refer (DOMAIN.md 5, 7)
MAINTENANCE: Final = (
    "a maintenance visit every 4-6 weeks, with the home program's stretches and "
    "self-massage in between"
)
# DOMAIN.md 5 and 7: whom a course without meaningful relief is referred to: at the
# second poor review with sessions left (the course goes on alongside), and when a
# course ends under MEANINGFUL_IMPROVEMENT (plan.completed outcome referred, never with
# MAINTENANCE: more of what did not help is no plan).
REFERRAL_AFTER_NO_PROGRESS: Final = "physician or physical therapist (DOMAIN.md 7)"

# DOMAIN.md 5 (seed 003's 4-14 days): a review date that passes with nothing to judge
# (no visit or check-in since the version began, or a single visit with nothing to
# compare it with) revises the plan review_overdue: the front desk contacts the client
# and the rest of the course is booked again, with a new review date this many days on.
# When that date passes with no visit either, the course ends lapsed. A plan waiting
# for a doctor's check (DOMAIN.md 1 red flag) is on hold: its review waits for the
# check, whose revision sets a new review date.
REVIEW_OVERDUE_GRACE_DAYS: Final = 14


@dataclass(frozen=True)
class SeverityWeights:
    """How much each factor moves the session count inside the course range."""

    intensity: float = 0.40  # worst intensity / 10
    regions: float = 0.20  # several painful areas
    nerve_signs: float = 0.15  # tingling, numbness or burning anywhere
    chronicity: float = 0.15  # how long the oldest complaint has lasted
    personal: float = 0.10  # precautions: lower pressure, slower progress
    regions_for_full: int = 4  # four or more areas count fully
    months_for_full: int = 12  # a year or more counts fully
    precautions_for_full: int = 2  # two or more precautions count fully


# DOMAIN.md 5: "more severe or complex cases (several areas, higher intensity) need
# more sessions; personal factors (age, health, stress, adherence) matter".
SEVERITY: Final = SeverityWeights()


@dataclass(frozen=True)
class Technique:
    code: str
    how: str
    hold_seconds: tuple[int, int] | None = None
    direct_pressure: bool = False  # carries the session's pressure target


# DOMAIN.md 4: the session, least to most aggressive. Warming strokes first,
# superficial fascia before deeper trigger points, stretching last.
TECHNIQUES: Final[tuple[Technique, ...]] = (
    Technique("warming_strokes", "effleurage, petrissage and kneading to warm the tissue"),
    Technique("myofascial_release", "broad, gentle pressure on superficial fascial restrictions"),
    Technique(
        "positional_release",
        "move to the position of comfort, shorten the muscle, hold, return slowly",
        hold_seconds=(90, 90),
    ),
    Technique(
        "direct_manipulation",
        "press the belly together, then separate from the belly toward the tendons",
    ),
    Technique("pir_pnf", "PIR (gentle, for muscles in spasm), then PNF contract-relax"),
    Technique(
        "ischemic_compression",
        "steady pressure against bone, then gradual release",
        hold_seconds=(10, 30),
        direct_pressure=True,
    ),
    Technique(
        "sustained_pressure",
        "sustained trigger point pressure against bone until release",
        hold_seconds=(30, 90),
        direct_pressure=True,
    ),
    Technique(
        "pincer_compression",
        "pinch the muscle between thumb and fingers where no bone lies beneath",
        hold_seconds=(10, 90),
        direct_pressure=True,
    ),
    Technique(
        "cross_fiber_friction",
        "across the fibres, for adhesions and scar tissue found",
        direct_pressure=True,
    ),
    Technique("stretching", "finish by stretching to re-educate the muscle to its length"),
)

# DOMAIN.md 4: positional release is the first choice for areas too painful for
# direct pressure; at this intensity the plan says so.
TOO_PAINFUL_FOR_PRESSURE: Final = 8

# DOMAIN.md 4: "therapeutic discomfort" around 6-7/10 (around 6 [002]), never forced.
PRESSURE_TARGET: Final = 6


@dataclass(frozen=True)
class PrecautionRule:
    """How one precaution changes the plan (DOMAIN.md 2: treat with care)."""

    pressure_cap: int  # DOMAIN.md 4: under precautions the target is lower
    modifications: tuple[tuple[str, str], ...]  # (code, detail)
    left_out: frozenset[str] = frozenset()  # techniques the plan never orders
    shorter_holds: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    pressure_note: str | None = None  # told at every direct pressure technique
    no_direct_pressure_in: frozenset[Region] = frozenset()
    advice: tuple[str, ...] = ()  # advice codes (shared/home_texts.py ADVICE)


# DOMAIN.md 2: precautions and their modifications.
PRECAUTIONS: Final[dict[PrecautionCode, PrecautionRule]] = {
    "pregnancy": PrecautionRule(
        pressure_cap=4,
        modifications=(
            ("pregnancy_positioning", "side-lying or semi-reclined with pillows, never flat prone"),
            (
                "no_deep_abdominal_low_back",
                "no deep abdominal or low-back pressure, above all in the first trimester",
            ),
        ),
        no_direct_pressure_in=frozenset({"low_back"}),
        advice=("pregnancy_self_massage",),
    ),
    "varicose_veins": PrecautionRule(
        pressure_cap=5,
        modifications=(
            ("avoid_varicose_veins", "no direct work on varicose veins; work around them"),
        ),
        advice=("varicose_veins_self_massage",),
    ),
    "hypertension": PrecautionRule(
        pressure_cap=5,
        modifications=(
            ("hypertension_care", "moderate pressure, no head-down positions, sit up slowly"),
            (
                "shorter_holds",
                "shorter, gentler holds: ischemic compression 10-20 s, sustained pressure 30-60 s",
            ),
        ),
        shorter_holds={"ischemic_compression": (10, 20), "sustained_pressure": (30, 60)},
    ),
    "blood_thinners": PrecautionRule(
        pressure_cap=4,
        modifications=(
            ("no_pincer", "no pincer compression: bruising risk on blood thinners"),
            ("no_deep_friction", "no cross-fiber friction: bruising risk on blood thinners"),
        ),
        left_out=frozenset({"pincer_compression", "cross_fiber_friction"}),
        advice=("blood_thinners_self_massage",),
    ),
    "reduced_sensation_medication": PrecautionRule(
        pressure_cap=4,
        modifications=(
            (
                "more_check_ins",
                "check in on pressure at every technique: the client feels less than usual",
            ),
        ),
        pressure_note="check in on pressure at every hold: reduced sensation",
    ),
}


# Modifications about holds: told only where the visit holds (an FMM visit holds none).
ABOUT_HOLDS: Final = frozenset({"shorter_holds"})


@dataclass(frozen=True)
class FindingRule:
    """How a screening finding that is not a precaution changes the plan.

    ``detail`` and ``pressure_note`` may name ``{where}`` (the finding's region)
    and ``{finding}`` (screening's own words for it)."""

    modification: str
    detail: str
    pressure_note: str | None = None  # told at every direct pressure technique
    waits_for_doctor: bool = False  # the course waits for a doctor's check (``medical_check.py``)
    pressure_cap: int | None = None  # DOMAIN.md 4: lowers the target, like a precaution's


# DOMAIN.md 1: what screening finds in the pain description itself, by the code
# of its reason.
FINDINGS: Final[dict[str, FindingRule]] = {
    "red_flag_new_dull_pain": FindingRule(
        modification="medical_check",
        detail="{finding}; the client is advised to see a doctor (DOMAIN.md 1 red flag)",
        waits_for_doctor=True,
    ),
    "nerve_signs": FindingRule(
        modification="nerve_entrapment",
        detail="{where}: assess for nerve entrapment; no sustained pressure that provokes "
        "tingling, numbness or burning",
        pressure_note="ease off at once if pressure provokes tingling, numbness or burning "
        "in the {where}",
    ),
    # DOMAIN.md 5: age is a personal factor [002]; DOMAIN.md 2: severe osteoporosis is a
    # contraindication. Screening asks an older client (shared/pain.py OLDER_ADULT_AGE)
    # about osteoporosis: the pressure is gentler with age, and gentle until answered.
    "older_adult": FindingRule(
        modification="gentler_with_age",
        detail="{finding}",
        pressure_cap=5,
    ),
    "osteoporosis_unanswered": FindingRule(
        modification="osteoporosis_not_answered",
        detail="{finding}; ask the client at the first visit",
        pressure_note="gentle: whether the client has osteoporosis is not answered",
        pressure_cap=4,
    ),
    "osteoporosis": FindingRule(
        modification="osteoporosis_care",
        detail="{finding}",
        pressure_note="gentle, nothing heavy against bone: osteoporosis",
        pressure_cap=4,
    ),
}


# DOMAIN.md 1 red flag ("new, dull pain of two to three weeks that is not improving:
# bring it to a doctor's attention", seed 000): the course opens with a visit that
# assesses (history, posture, range of motion, gentle palpation; DOMAIN.md 3) at gentle
# pressure, and the rest waits until the therapist records the doctor's check, or
# overrides the wait with a reason. A doctor who advises against treatment ends the
# course referred.
MEDICAL_CHECK_BOOK_THROUGH: Final = 1  # sessions booked before the check is recorded
MEDICAL_CHECK_PRESSURE: Final = 3  # gentle: palpation to assess, no trigger point work
MEDICAL_CHECK_TECHNIQUES: Final[tuple[str, ...]] = (
    "warming_strokes",
    "myofascial_release",
    "stretching",
    "sigh_of_relief_breathing",  # FMM (seed 004): the client's own breathing
    "sensing_the_pattern",  # FMM: the client feels the pattern; no release worked yet
)  # the gentlest steps of each method; no direct pressure until the check is recorded
MEDICAL_CHECK_REFER_TO: Final = "the client's physician (DOMAIN.md 1 red flag)"

# DOMAIN.md 6: aftercare every client gets (advice codes: the words, in every
# language, are shared/home_texts.py ADVICE, as are those of every ``advice`` below).
AFTERCARE: Final[tuple[str, ...]] = ("drink_water", "soreness_is_normal", "gentle_movement")
# DOMAIN.md 6 and 4: FMM clients practise breathing and self-release at home.
FMM_AFTERCARE: Final[tuple[str, ...]] = ("sigh_of_relief_practice", "release_practice")
# DOMAIN.md 6: 2-3 specific stretches for the problem areas, not a long list.
STRETCHES_PER_PLAN: Final = (2, 3)

# DOMAIN.md 2 and 7: who a declined client is referred to, by contraindication code.
REFER_TO: Final[dict[str, str]] = {
    "recent_surgery": "the surgeon or the client's physician",
    "acute_injury_inflammation": "a physician or physical therapist",
    "malignancy": "the client's oncologist or physician",
    "undiagnosed_lump": "a physician, to diagnose the lump",
    "dvt": "a physician, promptly",
    "dvt_signs": "a physician, promptly",  # screening's DVT questions answered yes
    "severe_osteoporosis": "the client's physician",
    "acute_infection": "a physician",
    "skin_condition": "a physician or dermatologist",
}
REFER_TO_DEFAULT: Final = "the client's physician"

# DOMAIN.md 4 (modality choice): the skills a therapist needs for each modality. An
# FMM visit is FMM's own method (FMM_STEPS), with no NMT step: a therapist who
# practises FMM.
SKILLS_FOR_MODALITY: Final[dict[Modality, tuple[str, ...]]] = {
    "nmt": ("nmt",),
    "fmm": ("fmm",),
}
DEFAULT_MODALITY: Final[Modality] = "nmt"  # "either" -> the passive NMT approach


# --- FMM: its own method (DOMAIN.md 4, seed 004) -------------------------------------
# Seed 004: "The FMM views muscle contractions as regional defensive patterns rather
# than isolated trigger points." An FMM visit works the region's pattern from the deep
# muscles beside the spine, with the client taking part, instead of the NMT catalogue.


@dataclass(frozen=True)
class FmmStep:
    code: str
    how: str
    # what the step works on: the pattern's areas, the deep muscles beside the spine
    # (FmmPattern.spine), or nothing but the client's own practice
    works: Literal["pattern", "spine", "client"]
    hands_on: bool = False  # carries the session's pressure target


# Seed 004, in the order a visit follows it.
FMM_STEPS: Final[tuple[FmmStep, ...]] = (
    # "FMM practitioners consider why these patterns developed - as defensive muscular
    # responses due to chronic sympathetic nervous system hyperactivity"
    FmmStep(
        "defensive_pattern_assessment",
        "find with the client the region's defensive contraction pattern as a whole, and "
        "what keeps it on guard, not isolated trigger points",
        works="pattern",
    ),
    # "clients are taught to breathe with a sigh of relief"
    FmmStep(
        "sigh_of_relief_breathing",
        "the client breathes out with a sigh of relief",
        works="client",
    ),
    # "connect to their reactive contraction patterns ... thereby overriding dissociation"
    FmmStep(
        "sensing_the_pattern",
        "the client feels where the pattern holds (restoring proprioception), overriding "
        "dissociation",
        works="pattern",
    ),
    # "releasing the deepest layers of skeletal muscles, especially those adjacent to the
    # spine where larger muscles originate or are innervated. By convincing the local
    # sympathetic ganglia along the spine that it's safe to release"
    FmmStep(
        "deep_spinal_release",
        "release the deepest muscles beside the spine, where the region's larger muscles "
        "originate or are innervated, until the area is safe to let go",
        works="spine",
        hands_on=True,
    ),
    # "the client participates actively in their release process"; "the periphery,
    # including peripheral muscles and fascia, will also respond" (no direct fascial work)
    FmmStep(
        "participatory_release",
        "the client consciously releases the pattern with the breath while the therapist "
        "works the region; the periphery follows the deep release",
        works="pattern",
        hands_on=True,
    ),
    # "teaching clients to recognize the onset of tension ... to self-regulate"
    FmmStep(
        "self_regulation_practice",
        "teach the client to notice tension starting and release it with the breath, to "
        "practise at home",
        works="client",
    ),
)


@dataclass(frozen=True)
class FmmPattern:
    """A regional defensive pattern: the areas it holds and the deep muscles beside the
    spine it is released from (body map names)."""

    name: str
    serves: frozenset[Region]  # complaint regions worked as this pattern
    areas: tuple[Region, ...]  # worked with the complaint's own region
    spine: tuple[str, ...]


# Seed 004 names the traps-neck-shoulders pattern; the others group areas by the part
# of the spine their larger muscles are innervated from (the arm from the neck).
FMM_PATTERNS: Final[tuple[FmmPattern, ...]] = (
    FmmPattern(
        "traps, neck and shoulders",
        serves=frozenset({"head", "jaw", "neck", "shoulder", "shoulder_blade", "upper_back"}),
        areas=("neck", "shoulder", "shoulder_blade", "upper_back"),
        spine=("suboccipitals", "cervical multifidi"),
    ),
    FmmPattern(
        "arm",
        serves=frozenset({"arm", "elbow", "forearm", "wrist_hand"}),
        areas=("shoulder", "arm"),
        spine=("cervical multifidi",),
    ),
    FmmPattern(
        "mid back",
        serves=frozenset({"mid_back"}),
        areas=("mid_back",),
        spine=("thoracic erector spinae",),
    ),
    FmmPattern(
        "low back, pelvis and legs",
        serves=frozenset({"low_back", "glute", "hip", "thigh", "knee", "leg", "foot"}),
        areas=("low_back", "glute", "hip"),
        spine=("lumbar multifidi",),
    ),
)


# --- home program rules (DOMAIN.md 2, 5 and 6) ---------------------------------------
# The client does at home only what the plan's own precautions allow: no self-massage
# where the visit does not press (a precaution's ``no_direct_pressure_in``) or where a
# rule below says so, no stretch in a position a rule rules out (the body map's
# seated or standing version instead), gentle self-massage where asked.


@dataclass(frozen=True)
class HomeRule:
    """How a precaution or a personal factor changes the home program."""

    section: str  # the DOMAIN.md section the rationale names
    why: str  # in the rationale; the client reads shared/home_texts.py REASONS[key]
    avoid_positions: frozenset[Position] = frozenset()
    no_head_down: bool = False
    no_self_massage_on: frozenset[Region] = frozenset()
    gentle_self_massage: bool = False  # body_map.GENTLE_SELF_MASSAGE, seated or standing
    advice: tuple[str, ...] = ()  # advice codes (shared/home_texts.py ADVICE)


HOME_RULES: Final[dict[str, HomeRule]] = {
    # DOMAIN.md 2 pregnancy, the plan's own modification: "never flat prone"; and no
    # low-back pressure (PRECAUTIONS), so no self-massage there either.
    "pregnancy": HomeRule(
        section="DOMAIN.md 2", why="pregnancy", avoid_positions=frozenset({"prone"})
    ),
    # DOMAIN.md 2 pregnancy, "especially the first trimester" (seed 002: "During
    # pregnancy (especially the first trimester), we take extra precautions."): after
    # it, no lying flat on the back either. A stage the intake does not state counts as
    # after the first trimester.
    "pregnancy_after_first_trimester": HomeRule(
        section="DOMAIN.md 2",
        why="pregnancy after the first trimester",
        avoid_positions=frozenset({"supine", "prone"}),
        advice=("never_flat_on_back",),
    ),
    # DOMAIN.md 2 varicose veins, "avoid direct work on them" (seed 002): they lie in
    # the legs, so no rolling or pressing on the thigh, knee or calf.
    "varicose_veins": HomeRule(
        section="DOMAIN.md 2",
        why="varicose veins",
        no_self_massage_on=frozenset({"thigh", "knee", "leg"}),
    ),
    # DOMAIN.md 2 hypertension, the plan's own modifications: "no head-down positions,
    # sit up slowly", shorter, gentler holds.
    "hypertension": HomeRule(
        section="DOMAIN.md 2",
        why="hypertension",
        no_head_down=True,
        gentle_self_massage=True,
        advice=("hold_gently_and_breathe", "come_up_slowly"),
    ),
    # DOMAIN.md 5 personal factors, age (seed 002: "Things like your age, overall
    # health, stress levels ... all play important roles"), from OLDER_ADULT_AGE
    # (shared/pain.py): stretches seated or standing, not on the floor; gentle
    # self-massage.
    "older_adult": HomeRule(
        section="DOMAIN.md 5",
        why=f"age {OLDER_ADULT_AGE} or over",
        avoid_positions=frozenset({"supine", "prone", "kneeling", "hands_and_knees"}),
        gentle_self_massage=True,
        advice=("stretch_with_support",),
    ),
}

# DOMAIN.md 2 pregnancy: weeks 1-13 are the first trimester, 14-27 the second, 28 on
# the third (how a stated week or month of pregnancy is read).
FIRST_TRIMESTER_LAST_WEEK: Final = 13
SECOND_TRIMESTER_LAST_WEEK: Final = 27
