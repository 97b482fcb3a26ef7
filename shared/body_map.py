"""Where pain comes from and what the client can do for each area, as data.

Shared clinical knowledge: intake uses it to say which muscles to assess first,
the planner to build the visit and the home program. Every table names its
DOMAIN.md section and covers every region of ``shared.vocabulary``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

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

# DOMAIN.md 6: specific stretches the client is shown (name -> how).
STRETCHES: Final[dict[str, str]] = {
    "upper trapezius stretch": "Sit tall, hold the chair seat, tilt ear to shoulder; 30 s a side.",
    "levator scapulae stretch": "Turn the head toward the other armpit, chin down; 30 s a side.",
    "scalene stretch": "Hand on the collarbone, tilt the head away and back; 30 s a side.",
    "chin tuck": "Glide the chin straight back into a double chin, hold 5 s; 10 times.",
    "controlled jaw opening": "Tongue on the palate, open the jaw slowly and straight; 10 times.",
    "doorway chest stretch": "Forearms on a door frame, step through gently; 30 s.",
    "cross-body shoulder stretch": "Draw one arm across the chest with the other; 30 s a side.",
    "thread the needle": "On hands and knees, slide one arm under and rotate; 30 s a side.",
    "seated thoracic rotation": "Sit tall, arms crossed, turn slowly each way; 10 times.",
    "cat-cow": "On hands and knees, round then arch the back with the breath; 10 times.",
    "knee-to-chest stretch": "Lying on the back, hug one knee to the chest; 30 s a side.",
    "child's pose": "Kneel, sit back toward the heels, reach the arms forward; 30-60 s.",
    "figure-four glute stretch": "Lying down, ankle over the other knee, draw in; 30 s a side.",
    "kneeling hip flexor stretch": "Half-kneel, tuck the pelvis, shift forward; 30 s a side.",
    "overhead triceps stretch": "Hand down the back, ease the elbow back; 30 s a side.",
    "biceps wall stretch": "Palm on a wall behind you at shoulder height, turn away; 30 s.",
    "wrist extensor stretch": "Arm straight, palm down, bend the wrist down gently; 30 s.",
    "wrist flexor stretch": "Arm straight, palm up, bend the fingers and wrist back; 30 s.",
    "standing quadriceps stretch": "Hold a support, hold the ankle behind you; 30 s a side.",
    "seated hamstring stretch": "Chair edge, one leg straight, hinge at the hips; 30 s a side.",
    "wall calf stretch": "Hands on a wall, one leg back, heel down; 30 s, then bend the knee.",
    "plantar fascia stretch": "Seated, pull the toes back toward the shin; 30 s a foot.",
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

# DOMAIN.md 6: self-massage between sessions (tool, where).
SELF_MASSAGE: Final[dict[Region, tuple[str, str]]] = {
    "head": ("tennis ball", "against a wall, at the base of the skull"),
    "jaw": ("fingertips", "slow circles on the jaw muscle in front of the ear"),
    "neck": ("tennis ball", "against a wall, on the muscles beside (never on) the neck bones"),
    "shoulder": ("tennis ball", "against a wall, on the back of the shoulder"),
    "shoulder_blade": ("tennis ball", "against a wall, on and between the shoulder blades"),
    "upper_back": ("foam roller", "across the upper back, arms crossed over the chest"),
    "mid_back": ("foam roller", "along the mid back beside the spine"),
    "low_back": ("tennis ball", "lying down, beside (never on) the lower spine"),
    "glute": ("tennis ball", "sitting or against a wall, in the buttock muscles"),
    "hip": ("tennis ball", "against a wall, on the side of the hip"),
    "arm": ("tennis ball", "against a wall, on the back of the upper arm"),
    "elbow": ("tennis ball", "on a table, on the forearm just below the elbow"),
    "forearm": ("tennis ball", "on a table, along the forearm muscles"),
    "wrist_hand": ("tennis ball", "on a table, along the forearm and in the palm"),
    "thigh": ("foam roller", "front, side and back of the thigh"),
    "knee": ("foam roller", "the thigh and calf above and below the knee, not the kneecap"),
    "leg": ("foam roller", "along the calf"),
    "foot": ("tennis ball", "underfoot, rolling the sole"),
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
