"""Where pain comes from and what the client can do for each area, as data.

Shared clinical knowledge: intake uses it to say which muscles to assess first
and which muscle names an assessment may give, the planner to build the visit and
the home program (with the position of each stretch, and what the therapist's
range of motion limits and posture findings ask the stretches to work on). Every
table names its DOMAIN.md section, and every table by region covers every region of
``shared.vocabulary``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, get_args

from shared import home_texts as texts
from shared.vocabulary import Region


@dataclass(frozen=True)
class Muscle:
    lies_in: frozenset[Region]  # never worked when one of these areas is excluded
    pincer: bool = False  # DOMAIN.md 4: no bone beneath -> pincer, not pressure on bone


def _m(*regions: Region, pincer: bool = False) -> Muscle:
    return Muscle(lies_in=frozenset(regions), pincer=pincer)


# DOMAIN.md 3 and 4: where each muscle lies, and whether bone lies beneath it.
MUSCLES: Final[dict[str, Muscle]] = {
    "temporalis": _m("head"),
    "suboccipitals": _m("head", "neck"),
    "masseter": _m("jaw"),
    "sternocleidomastoid": _m("neck", pincer=True),
    "upper trapezius": _m("neck", "shoulder", pincer=True),
    "splenius capitis": _m("neck"),
    "levator scapulae": _m("neck", "shoulder_blade"),
    "scalenes": _m("neck"),
    "cervical multifidi": _m("neck"),
    "deltoid": _m("shoulder", "arm"),
    "pectoralis major": _m("shoulder", pincer=True),
    "infraspinatus": _m("shoulder_blade"),
    "supraspinatus": _m("shoulder_blade"),
    "subscapularis": _m("shoulder_blade"),
    "rhomboids": _m("shoulder_blade", "upper_back"),
    "middle trapezius": _m("upper_back"),
    "serratus posterior superior": _m("upper_back"),
    "thoracic erector spinae": _m("mid_back"),
    "latissimus dorsi": _m("mid_back", pincer=True),
    "serratus anterior": _m("mid_back"),
    "serratus posterior inferior": _m("mid_back"),
    "quadratus lumborum": _m("low_back"),
    "lumbar erector spinae": _m("low_back"),
    "lumbar multifidi": _m("low_back"),
    "gluteus maximus": _m("glute"),
    "gluteus medius": _m("glute", "hip"),
    "gluteus minimus": _m("glute", "hip"),
    "piriformis": _m("glute"),
    "tensor fasciae latae": _m("hip"),
    "biceps brachii": _m("arm"),
    "triceps brachii": _m("arm"),
    "brachioradialis": _m("forearm", "elbow"),
    "supinator": _m("forearm", "elbow"),
    "wrist extensors": _m("forearm"),
    "wrist flexors": _m("forearm"),
    "adductor pollicis": _m("wrist_hand"),
    "quadriceps": _m("thigh", "knee"),
    "hamstrings": _m("thigh", "knee"),
    "adductors": _m("thigh"),
    "gastrocnemius": _m("leg", "knee"),
    "soleus": _m("leg"),
    "tibialis anterior": _m("leg"),
    "peroneus longus": _m("leg"),
    "plantar intrinsics": _m("foot"),
}

# DOMAIN.md 3: a complaint in one area is a reason to assess the muscles that
# commonly refer pain there (upper trapezius -> headache, neck -> between the
# shoulder blades, shoulder -> arm, trigger points -> sciatica-like leg pain).
REFERRERS: Final[dict[Region, tuple[str, ...]]] = {
    "head": (
        "upper trapezius",
        "sternocleidomastoid",
        "suboccipitals",
        "splenius capitis",
        "temporalis",
    ),
    "jaw": ("masseter", "temporalis", "sternocleidomastoid", "upper trapezius"),
    "neck": ("upper trapezius", "levator scapulae", "splenius capitis", "cervical multifidi"),
    "shoulder": ("infraspinatus", "supraspinatus", "deltoid", "subscapularis", "pectoralis major"),
    "shoulder_blade": (
        "levator scapulae",
        "rhomboids",
        "scalenes",
        "infraspinatus",
        "supraspinatus",
    ),
    "upper_back": (
        "scalenes",
        "levator scapulae",
        "rhomboids",
        "middle trapezius",
        "serratus posterior superior",
    ),
    "mid_back": (
        "thoracic erector spinae",
        "latissimus dorsi",
        "serratus anterior",
        "serratus posterior inferior",
    ),
    "low_back": (
        "quadratus lumborum",
        "lumbar erector spinae",
        "lumbar multifidi",
        "gluteus medius",
    ),
    "glute": ("gluteus medius", "gluteus maximus", "piriformis", "quadratus lumborum"),
    "hip": (
        "gluteus medius",
        "gluteus minimus",
        "tensor fasciae latae",
        "quadratus lumborum",
        "piriformis",
    ),
    "arm": ("scalenes", "infraspinatus", "supraspinatus", "biceps brachii", "triceps brachii"),
    "elbow": (
        "triceps brachii",
        "supinator",
        "brachioradialis",
        "wrist extensors",
        "biceps brachii",
    ),
    "forearm": ("wrist extensors", "wrist flexors", "brachioradialis", "supinator", "scalenes"),
    "wrist_hand": ("wrist extensors", "wrist flexors", "scalenes", "adductor pollicis"),
    "thigh": ("quadriceps", "hamstrings", "adductors", "tensor fasciae latae", "gluteus minimus"),
    "knee": ("quadriceps", "hamstrings", "gastrocnemius", "adductors"),
    "leg": (
        "gluteus minimus",
        "piriformis",
        "gastrocnemius",
        "soleus",
        "tibialis anterior",
        "peroneus longus",
    ),
    "foot": (
        "soleus",
        "gastrocnemius",
        "tibialis anterior",
        "peroneus longus",
        "plantar intrinsics",
    ),
}

# DOMAIN.md 6: specific stretches the client is shown (name -> how), in English; the
# other tables name a stretch by this name. Its stable code, and its words in every
# language messages are written in, are in ``shared/home_texts.py``.
STRETCHES: Final[dict[str, str]] = {s.name.en: s.how.en for s in texts.STRETCHES.values()}
STRETCH_CODES: Final[dict[str, str]] = {s.name.en: c for c, s in texts.STRETCHES.items()}

# The position each stretch is done in, so that a precaution can rule one out
# (DOMAIN.md 2: pregnancy, hypertension; DOMAIN.md 5: age) and the home program
# offer the seated or standing version instead.
Position = Literal[
    "standing", "seated", "side_lying", "kneeling", "hands_and_knees", "supine", "prone"
]

STRETCH_POSITIONS: Final[dict[str, Position]] = {
    "upper trapezius stretch": "seated",
    "levator scapulae stretch": "seated",
    "scalene stretch": "seated",
    "chin tuck": "seated",
    "controlled jaw opening": "seated",
    "doorway chest stretch": "standing",
    "cross-body shoulder stretch": "standing",
    "thread the needle": "hands_and_knees",
    "seated thoracic rotation": "seated",
    "cat-cow": "hands_and_knees",
    "knee-to-chest stretch": "supine",
    "child's pose": "kneeling",
    "figure-four glute stretch": "supine",
    "kneeling hip flexor stretch": "kneeling",
    "overhead triceps stretch": "standing",
    "biceps wall stretch": "standing",
    "wrist extensor stretch": "seated",
    "wrist flexor stretch": "seated",
    "standing quadriceps stretch": "standing",
    "seated hamstring stretch": "seated",
    "wall calf stretch": "standing",
    "plantar fascia stretch": "seated",
    "standing pelvic tilt": "standing",
    "seated figure-four stretch": "seated",
    "seated cat-cow": "seated",
    "seated side bend": "seated",
    "standing hip flexor stretch": "standing",
}

# Stretches with the head lower than the heart (DOMAIN.md 2 hypertension: no
# head-down positions).
HEAD_DOWN_STRETCHES: Final[frozenset[str]] = frozenset({"child's pose", "thread the needle"})

# The seated or standing stretch, never head-down, for the same area, given in place
# of a stretch on the floor or head-down when a precaution or age rules that out.
STRETCH_ALTERNATIVES: Final[dict[str, str]] = {
    "knee-to-chest stretch": "standing pelvic tilt",
    "figure-four glute stretch": "seated figure-four stretch",
    "child's pose": "seated side bend",
    "cat-cow": "seated cat-cow",
    "thread the needle": "seated thoracic rotation",
    "kneeling hip flexor stretch": "standing hip flexor stretch",
}

# DOMAIN.md 6: the stretches for each problem area, the most useful first.
STRETCHES_FOR: Final[dict[Region, tuple[str, ...]]] = {
    "head": ("upper trapezius stretch", "chin tuck"),
    "jaw": ("controlled jaw opening", "chin tuck"),
    "neck": ("upper trapezius stretch", "levator scapulae stretch", "chin tuck"),
    "shoulder": ("doorway chest stretch", "cross-body shoulder stretch"),
    "shoulder_blade": ("levator scapulae stretch", "thread the needle"),
    "upper_back": ("thread the needle", "scalene stretch", "doorway chest stretch"),
    "mid_back": ("seated thoracic rotation", "cat-cow"),
    "low_back": ("knee-to-chest stretch", "child's pose", "cat-cow"),
    "glute": ("figure-four glute stretch", "knee-to-chest stretch"),
    "hip": ("figure-four glute stretch", "kneeling hip flexor stretch"),
    "arm": ("cross-body shoulder stretch", "overhead triceps stretch", "biceps wall stretch"),
    "elbow": ("wrist extensor stretch", "overhead triceps stretch"),
    "forearm": ("wrist extensor stretch", "wrist flexor stretch"),
    "wrist_hand": ("wrist flexor stretch", "wrist extensor stretch"),
    "thigh": ("standing quadriceps stretch", "seated hamstring stretch"),
    "knee": ("standing quadriceps stretch", "wall calf stretch"),
    "leg": ("wall calf stretch", "seated hamstring stretch"),
    "foot": ("wall calf stretch", "plantar fascia stretch"),
}

# DOMAIN.md 6: self-massage between sessions (tool, where), in English (the words in
# every language: ``shared/home_texts.py``).
SELF_MASSAGE: Final[dict[Region, tuple[str, str]]] = {
    r: (texts.TOOLS[m.tool].en, m.where.en) for r, m in texts.SELF_MASSAGE.items()
}

# The position each SELF_MASSAGE is done in (a foam roller is lain on).
SELF_MASSAGE_POSITIONS: Final[dict[Region, Position]] = {
    "head": "standing",
    "jaw": "seated",
    "neck": "standing",
    "shoulder": "standing",
    "shoulder_blade": "standing",
    "upper_back": "supine",
    "mid_back": "supine",
    "low_back": "supine",
    "glute": "seated",
    "hip": "standing",
    "arm": "standing",
    "elbow": "seated",
    "forearm": "seated",
    "wrist_hand": "seated",
    "thigh": "prone",
    "knee": "prone",
    "leg": "seated",
    "foot": "seated",
}

# DOMAIN.md 6 self-massage, the gentle version (tool, where): light pressure, seated
# or standing, for a client whose precautions or age ask for gentler options or rule
# out the usual position (the words in every language: ``shared/home_texts.py``).
GENTLE_SELF_MASSAGE: Final[dict[Region, tuple[str, str]]] = {
    r: (texts.TOOLS[m.tool].en, m.where.en) for r, m in texts.GENTLE_SELF_MASSAGE.items()
}


def works_in_excluded(muscle: str, excluded: Iterable[Region]) -> bool:
    """DOMAIN.md 2: a muscle lying in any excluded area is never worked."""
    return not MUSCLES[muscle].lies_in.isdisjoint(excluded)


def assess_first(
    regions: Iterable[Region], *, excluded: Iterable[Region] = ()
) -> list[tuple[Region, tuple[str, ...]]]:
    """DOMAIN.md 3: per complaint region, the muscles that commonly refer pain there."""
    skip = frozenset(excluded)
    return [
        (region, tuple(m for m in REFERRERS[region] if not works_in_excluded(m, skip)))
        for region in dict.fromkeys(regions)
    ]


def muscle_named(name: str) -> str | None:
    """The body map's muscle a therapist's name for it means (any case, outer spaces)."""
    muscle = name.strip().lower()
    return muscle if muscle in MUSCLES else None


KNOWN_MUSCLES: Final[tuple[str, ...]] = tuple(sorted(MUSCLES))


@dataclass(frozen=True)
class Limitation:
    """A limited movement or a posture finding (DOMAIN.md 3) and the stretches that
    work on it (DOMAIN.md 6). A therapist's free text names it when it says one of
    ``phrases``, or one of ``parts`` together with one of ``motions`` (each matched
    from the start of a word: "rotat" finds "rotation" and "rotating")."""

    name: str
    region: Region  # the problem area the stretches are for
    stretches: tuple[str, ...]
    parts: tuple[str, ...] = ()
    motions: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()

    def named_in(self, text: str) -> bool:
        said = " ".join(text.lower().replace("-", " ").replace("_", " ").split())
        return any(_says(said, p) for p in self.phrases) or (
            any(_says(said, p) for p in self.parts) and any(_says(said, m) for m in self.motions)
        )


def _says(text: str, stem: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(stem)}", text) is not None


_HEAD = ("head", "neck", "cervical")
_SHOULDER = ("shoulder", "arm")
_TRUNK = ("trunk", "torso", "thoracic", "spine", "spinal", "back", "lumbar", "waist")

# DOMAIN.md 3 range of motion tests ([002]: "Can you turn your head fully to both
# sides? Raise your arms without discomfort?"); [000]: tension and spasm restrict the
# range of motion. Each limited movement -> the stretches for the muscles that limit
# it, most useful first. The first entry a limit names is the one it means, so the
# more specific entries come first.
MOVEMENTS: Final[tuple[Limitation, ...]] = (
    Limitation(
        "jaw opening",
        "jaw",
        ("controlled jaw opening",),
        parts=("jaw", "mouth", "tmj"),
        motions=("open",),
    ),
    Limitation(
        "head rotation",
        "neck",
        ("levator scapulae stretch", "scalene stretch"),
        parts=_HEAD,
        motions=("rotat", "turn"),
    ),
    Limitation(
        "head side bending",
        "neck",
        ("upper trapezius stretch", "scalene stretch"),
        parts=_HEAD,
        motions=("side bend", "lateral flex", "side flex", "tilt"),
    ),
    Limitation(
        "head flexion",
        "neck",
        ("upper trapezius stretch", "chin tuck"),
        parts=_HEAD,
        motions=("flex", "bend forward", "bending forward"),
        phrases=("looking down", "look down", "chin to chest"),
    ),
    Limitation(
        "head extension",
        "neck",
        ("scalene stretch", "chin tuck"),
        parts=_HEAD,
        motions=("extens", "extend"),
        phrases=("looking up", "look up"),
    ),
    Limitation(
        "elbow extension",
        "arm",
        ("biceps wall stretch",),
        parts=("elbow",),
        motions=("extens", "extend", "straighten"),
    ),
    Limitation(
        "elbow flexion",
        "arm",
        ("overhead triceps stretch",),
        parts=("elbow",),
        motions=("flex", "bend"),
    ),
    Limitation(
        "wrist extension",
        "forearm",
        ("wrist flexor stretch",),
        parts=("wrist", "hand"),
        motions=("extens", "extend", "dorsiflex", "bend back"),
    ),
    Limitation(
        "wrist flexion",
        "forearm",
        ("wrist extensor stretch",),
        parts=("wrist", "hand"),
        motions=("flex", "bend"),
    ),
    Limitation(
        "shoulder internal rotation",
        "shoulder",
        ("cross-body shoulder stretch",),
        parts=_SHOULDER,
        motions=("internal rotat", "inward rotat"),
        phrases=("hand behind", "reach behind", "reaching behind", "behind the back"),
    ),
    Limitation(
        "shoulder external rotation",
        "shoulder",
        ("doorway chest stretch",),
        parts=_SHOULDER,
        motions=("external rotat", "outward rotat"),
    ),
    Limitation(
        "raising the arm",
        "shoulder",
        ("doorway chest stretch", "overhead triceps stretch"),
        parts=_SHOULDER,
        motions=("rais", "flex", "abduct", "elevat", "overhead", "reach"),
        phrases=("overhead reach", "reaching overhead", "arms overhead"),
    ),
    Limitation(
        "shoulder rotation",
        "shoulder",
        ("cross-body shoulder stretch", "doorway chest stretch"),
        parts=_SHOULDER,
        motions=("rotat",),
    ),
    Limitation(
        "trunk rotation",
        "mid_back",
        ("seated thoracic rotation", "thread the needle"),
        parts=_TRUNK,
        motions=("rotat", "turn", "twist"),
    ),
    Limitation(
        "trunk side bending",
        "low_back",
        ("seated side bend",),
        parts=_TRUNK,
        motions=("side bend", "lateral flex", "side flex"),
        phrases=("side bend", "side bending"),
    ),
    Limitation(
        "bending backward",
        "low_back",
        ("kneeling hip flexor stretch", "cat-cow"),
        parts=_TRUNK,
        motions=("extens", "extend", "arch"),
        phrases=("bending backward", "bend backward", "backward bend"),
    ),
    Limitation(
        "bending forward",
        "low_back",
        ("knee-to-chest stretch", "seated hamstring stretch"),
        parts=_TRUNK,
        motions=("flex", "forward"),
        phrases=(
            "forward bend",
            "bending forward",
            "bend forward",
            "toe touch",
            "touch the toes",
            "touching the toes",
        ),
    ),
    Limitation(
        "hip extension",
        "hip",
        ("kneeling hip flexor stretch",),
        parts=("hip",),
        motions=("extens", "extend"),
        phrases=("hip flexor",),
    ),
    Limitation(
        "hip rotation",
        "glute",
        ("figure-four glute stretch",),
        parts=("hip",),
        motions=("rotat",),
    ),
    Limitation(
        "hip flexion",
        "glute",
        ("figure-four glute stretch", "knee-to-chest stretch"),
        parts=("hip",),
        motions=("flex",),
        phrases=("knee to chest",),
    ),
    Limitation(
        "straight leg raise",
        "thigh",
        ("seated hamstring stretch",),
        parts=("knee", "hamstring"),
        motions=("extens", "extend", "straighten"),
        phrases=("straight leg", "slr"),
    ),
    Limitation(
        "knee flexion",
        "thigh",
        ("standing quadriceps stretch",),
        parts=("knee",),
        motions=("flex", "bend"),
    ),
    Limitation(
        "ankle dorsiflexion",
        "leg",
        ("wall calf stretch",),
        parts=("ankle", "calf", "foot"),
        motions=("dorsiflex", "flex", "squat", "bend"),
    ),
)

# DOMAIN.md 3 postural assessment ([002]: "forward head posture, rounded shoulders, or
# an uneven pelvis. These subtle imbalances often reveal which muscles are tight or
# weak"; "text neck"): each finding -> the stretches for the muscles it shortens.
POSTURES: Final[tuple[Limitation, ...]] = (
    Limitation(
        "forward head posture",
        "neck",
        ("chin tuck", "doorway chest stretch"),
        phrases=("forward head", "head forward", "text neck", "chin poke", "poking chin"),
    ),
    Limitation(
        "rounded shoulders",
        "upper_back",
        ("doorway chest stretch", "seated thoracic rotation"),
        phrases=(
            "rounded shoulder",
            "round shoulder",
            "shoulders rounded",
            "shoulders forward",
            "slouch",
            "hunch",
            "kyphos",
        ),
    ),
    Limitation(
        "uneven pelvis",
        "low_back",
        ("seated side bend", "kneeling hip flexor stretch"),
        phrases=(
            "uneven pelvis",
            "pelvis uneven",
            "pelvic tilt",
            "pelvic obliquity",
            "hip hike",
            "hiked hip",
            "high hip",
            "hip higher",
            "leg length",
        ),
    ),
)


def limited_movements(limits: Iterable[str]) -> list[Limitation]:
    """DOMAIN.md 3: the movements the therapist's range of motion limits name, each
    once, in the order given; a limit naming none of ``MOVEMENTS`` is left out."""
    return _named(limits, MOVEMENTS)


def posture_patterns(findings: Iterable[str]) -> list[Limitation]:
    """DOMAIN.md 3: the posture findings ``POSTURES`` knows, each once, in order."""
    return _named(findings, POSTURES)


def _named(texts: Iterable[str], table: tuple[Limitation, ...]) -> list[Limitation]:
    found = (next((entry for entry in table if entry.named_in(text)), None) for text in texts)
    return list(dict.fromkeys(entry for entry in found if entry is not None))


def in_region_order(regions: Iterable[Region]) -> list[Region]:
    """``regions`` once each, in the vocabulary's order (head to foot)."""
    chosen = set(regions)
    return [r for r in get_args(Region) if r in chosen]
