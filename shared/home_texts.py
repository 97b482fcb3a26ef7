"""What the client reads of the home program, in every language messages are written
in: each stretch (name and how), each self-massage (usual and gentle: tool and where),
each advice line the planner gives, and the words those lines name (areas, reasons).
Each entry holds its English and its Spanish side by side, so that the clinical
wording is reviewed in one place (DOMAIN.md 2, 5 and 6 say what it is for).

The plan events carry stable codes beside their English lines (``Stretch.code``,
``HomeProgram.self_massage_items`` and ``advice_items``), and the notifier translates
them at send time, in the language the client's contact has then. Why codes and not
translations in the events: the language is chosen when the message goes out (a
``client.updated`` can change it after the plan was made), the plan events stay small
(every version is kept in the planner's and the notifier's state), other subscribers
get codes they can translate for themselves, and no second copy of a clinical sentence
can drift from this one. The body map (``shared/body_map.py``) and the planner's
knowledge (``services/planner/knowledge.py``) take their English from here.

A code is never renamed or reused for another meaning; its words may be improved.
Spanish is written plainly, addressing the client as *usted*, with no word that takes
the client's gender. Pure data and lookups; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from shared.pain import OLDER_ADULT_AGE
from shared.vocabulary import Region

Language = Literal["en", "es"]
LANGUAGES: Final[tuple[Language, ...]] = ("en", "es")


@dataclass(frozen=True)
class Words:
    """One text the client reads, in each language."""

    en: str
    es: str

    def text(self, language: str) -> str:
        """The words in ``language`` (``en`` or ``es``: a message language, not a tag)."""
        if language == "es":
            return self.es
        if language == "en":
            return self.en
        raise ValueError(f"the home program is not written in {language!r}")


@dataclass(frozen=True)
class StretchWords:
    name: Words
    how: Words


@dataclass(frozen=True)
class MassageWords:
    tool: str  # a key of TOOLS
    where: Words


def _s(name_en: str, name_es: str, how_en: str, how_es: str) -> StretchWords:
    return StretchWords(name=Words(name_en, name_es), how=Words(how_en, how_es))


# DOMAIN.md 6: specific stretches the client is shown, by code.
STRETCHES: Final[dict[str, StretchWords]] = {
    "upper_trapezius_stretch": _s(
        "upper trapezius stretch",
        "estiramiento del trapecio superior",
        "Sit tall, hold the chair seat, tilt ear to shoulder; 30 s a side.",
        "Siéntese con la espalda recta, sujete el asiento de la silla e incline la oreja "
        "hacia el hombro; 30 s por lado.",
    ),
    "levator_scapulae_stretch": _s(
        "levator scapulae stretch",
        "estiramiento del elevador de la escápula",
        "Turn the head toward the other armpit, chin down; 30 s a side.",
        "Gire la cabeza hacia la axila contraria, con la barbilla hacia abajo; 30 s por lado.",
    ),
    "scalene_stretch": _s(
        "scalene stretch",
        "estiramiento de los escalenos",
        "Hand on the collarbone, tilt the head away and back; 30 s a side.",
        "Con la mano sobre la clavícula, incline la cabeza hacia el lado contrario y hacia "
        "atrás; 30 s por lado.",
    ),
    "chin_tuck": _s(
        "chin tuck",
        "retracción de la barbilla",
        "Glide the chin straight back into a double chin, hold 5 s; 10 times.",
        "Lleve la barbilla recta hacia atrás, como si hiciera papada, y mantenga 5 s; 10 veces.",
    ),
    "controlled_jaw_opening": _s(
        "controlled jaw opening",
        "apertura controlada de la mandíbula",
        "Tongue on the palate, open the jaw slowly and straight; 10 times.",
        "Con la lengua en el paladar, abra la boca despacio y en línea recta; 10 veces.",
    ),
    "doorway_chest_stretch": _s(
        "doorway chest stretch",
        "estiramiento del pecho en el marco de una puerta",
        "Forearms on a door frame, step through gently; 30 s.",
        "Apoye los antebrazos en el marco de una puerta y dé un paso adelante con suavidad; 30 s.",
    ),
    "cross_body_shoulder_stretch": _s(
        "cross-body shoulder stretch",
        "estiramiento del hombro con el brazo cruzado",
        "Draw one arm across the chest with the other; 30 s a side.",
        "Lleve un brazo por delante del pecho con ayuda del otro; 30 s por lado.",
    ),
    "thread_the_needle": _s(
        "thread the needle",
        "enhebrar la aguja",
        "On hands and knees, slide one arm under and rotate; 30 s a side.",
        "A cuatro patas, deslice un brazo por debajo del cuerpo y gire el tronco; 30 s por lado.",
    ),
    "seated_thoracic_rotation": _s(
        "seated thoracic rotation",
        "rotación de la espalda en una silla",
        "Sit tall, arms crossed, turn slowly each way; 10 times.",
        "Siéntese con la espalda recta y los brazos cruzados, y gire despacio hacia cada lado; "
        "10 veces.",
    ),
    "cat_cow": _s(
        "cat-cow",
        "gato-vaca",
        "On hands and knees, round then arch the back with the breath; 10 times.",
        "A cuatro patas, redondee y después arquee la espalda al ritmo de la respiración; "
        "10 veces.",
    ),
    "knee_to_chest_stretch": _s(
        "knee-to-chest stretch",
        "estiramiento de rodilla al pecho",
        "Lying on the back, hug one knee to the chest; 30 s a side.",
        "Boca arriba, abrace una rodilla contra el pecho; 30 s por lado.",
    ),
    "childs_pose": _s(
        "child's pose",
        "postura del niño",
        "Kneel, sit back toward the heels, reach the arms forward; 30-60 s.",
        "De rodillas, siéntese hacia los talones y estire los brazos hacia delante; 30-60 s.",
    ),
    "figure_four_glute_stretch": _s(
        "figure-four glute stretch",
        "estiramiento del glúteo en figura de cuatro",
        "Lying down, ankle over the other knee, draw in; 30 s a side.",
        "Boca arriba, apoye un tobillo sobre la rodilla contraria y acerque las piernas hacia "
        "usted; 30 s por lado.",
    ),
    "kneeling_hip_flexor_stretch": _s(
        "kneeling hip flexor stretch",
        "estiramiento del flexor de la cadera de rodillas",
        "Half-kneel, tuck the pelvis, shift forward; 30 s a side.",
        "Con una rodilla en el suelo, meta la pelvis y lleve el peso hacia delante; 30 s por lado.",
    ),
    "overhead_triceps_stretch": _s(
        "overhead triceps stretch",
        "estiramiento del tríceps por encima de la cabeza",
        "Hand down the back, ease the elbow back; 30 s a side.",
        "Lleve la mano por detrás de la cabeza hacia la espalda y empuje el codo suavemente "
        "hacia atrás; 30 s por lado.",
    ),
    "biceps_wall_stretch": _s(
        "biceps wall stretch",
        "estiramiento del bíceps en la pared",
        "Palm on a wall behind you at shoulder height, turn away; 30 s.",
        "Apoye la palma en una pared detrás de usted, a la altura del hombro, y gire el cuerpo "
        "hacia el otro lado; 30 s.",
    ),
    "wrist_extensor_stretch": _s(
        "wrist extensor stretch",
        "estiramiento de los extensores de la muñeca",
        "Arm straight, palm down, bend the wrist down gently; 30 s.",
        "Con el brazo estirado y la palma hacia abajo, doble la muñeca hacia abajo con "
        "suavidad; 30 s.",
    ),
    "wrist_flexor_stretch": _s(
        "wrist flexor stretch",
        "estiramiento de los flexores de la muñeca",
        "Arm straight, palm up, bend the fingers and wrist back; 30 s.",
        "Con el brazo estirado y la palma hacia arriba, lleve los dedos y la muñeca hacia "
        "atrás; 30 s.",
    ),
    "standing_quadriceps_stretch": _s(
        "standing quadriceps stretch",
        "estiramiento del cuádriceps de pie",
        "Hold a support, hold the ankle behind you; 30 s a side.",
        "Apóyese en algo firme y sujete el tobillo por detrás; 30 s por lado.",
    ),
    "seated_hamstring_stretch": _s(
        "seated hamstring stretch",
        "estiramiento de los isquiotibiales en una silla",
        "Chair edge, one leg straight, hinge at the hips; 30 s a side.",
        "En el borde de la silla, con una pierna estirada, inclínese hacia delante desde la "
        "cadera; 30 s por lado.",
    ),
    "wall_calf_stretch": _s(
        "wall calf stretch",
        "estiramiento de la pantorrilla en la pared",
        "Hands on a wall, one leg back, heel down; 30 s, then bend the knee.",
        "Con las manos en la pared y una pierna atrás, apoye el talón en el suelo; 30 s, y "
        "después doble la rodilla.",
    ),
    "plantar_fascia_stretch": _s(
        "plantar fascia stretch",
        "estiramiento de la fascia plantar",
        "Seated, pull the toes back toward the shin; 30 s a foot.",
        "En una silla, tire de los dedos del pie hacia la espinilla; 30 s cada pie.",
    ),
    # seated or standing versions of the floor stretches (body_map.STRETCH_ALTERNATIVES)
    "standing_pelvic_tilt": _s(
        "standing pelvic tilt",
        "basculación de la pelvis de pie",
        "Back to a wall, knees soft, flatten the low back; 5 s, 10 times.",
        "De espaldas a la pared, con las rodillas un poco dobladas, pegue la zona lumbar a la "
        "pared; 5 s, 10 veces.",
    ),
    "seated_figure_four_stretch": _s(
        "seated figure-four stretch",
        "estiramiento en figura de cuatro en una silla",
        "Sit tall, ankle over the other knee, lean in; 30 s a side.",
        "Siéntese con la espalda recta, apoye un tobillo sobre la rodilla contraria e "
        "inclínese hacia delante; 30 s por lado.",
    ),
    "seated_cat_cow": _s(
        "seated cat-cow",
        "gato-vaca en una silla",
        "Sit tall, hands on the knees, round then arch the back; 10 times.",
        "Siéntese con la espalda recta y las manos en las rodillas, y redondee y después "
        "arquee la espalda; 10 veces.",
    ),
    "seated_side_bend": _s(
        "seated side bend",
        "inclinación lateral en una silla",
        "Sit tall, hold the chair, reach the other arm up and over; 20 s a side.",
        "Siéntese con la espalda recta, sujétese a la silla y lleve el otro brazo hacia arriba "
        "y por encima de la cabeza; 20 s por lado.",
    ),
    "standing_hip_flexor_stretch": _s(
        "standing hip flexor stretch",
        "estiramiento del flexor de la cadera de pie",
        "Hold a support, step one foot back, tuck the pelvis; 30 s.",
        "Apóyese en algo firme, lleve un pie hacia atrás y meta la pelvis; 30 s.",
    ),
}

# DOMAIN.md 6: what self-massage is done with.
TOOLS: Final[dict[str, Words]] = {
    "tennis_ball": Words("tennis ball", "pelota de tenis"),
    "foam_roller": Words("foam roller", "rodillo de espuma"),
    "fingertips": Words("fingertips", "yemas de los dedos"),
    "soft_ball": Words("soft ball", "pelota blanda"),
    "hands": Words("hands", "manos"),
}


def _m(tool: str, where_en: str, where_es: str) -> MassageWords:
    return MassageWords(tool=tool, where=Words(where_en, where_es))


_WALL = "contra una pared"
_STANDING = "de pie contra una pared"
_SEATED = "en una silla"

# DOMAIN.md 6: self-massage between sessions, per area (tool, where).
SELF_MASSAGE: Final[dict[Region, MassageWords]] = {
    "head": _m(
        "tennis_ball", "against a wall, at the base of the skull", f"{_WALL}, en la base del cráneo"
    ),
    "jaw": _m(
        "fingertips",
        "slow circles on the jaw muscle in front of the ear",
        "círculos lentos sobre el músculo de la mandíbula, delante de la oreja",
    ),
    "neck": _m(
        "tennis_ball",
        "against a wall, on the muscles beside (never on) the neck bones",
        f"{_WALL}, en los músculos junto a las vértebras del cuello (nunca sobre ellas)",
    ),
    "shoulder": _m(
        "tennis_ball",
        "against a wall, on the back of the shoulder",
        f"{_WALL}, en la parte de atrás del hombro",
    ),
    "shoulder_blade": _m(
        "tennis_ball",
        "against a wall, on and between the shoulder blades",
        f"{_WALL}, sobre los omóplatos y entre ellos",
    ),
    "upper_back": _m(
        "foam_roller",
        "across the upper back, arms crossed over the chest",
        "de lado a lado de la parte alta de la espalda, con los brazos cruzados sobre el pecho",
    ),
    "mid_back": _m(
        "foam_roller",
        "along the mid back beside the spine",
        "a lo largo de la zona media de la espalda, junto a la columna",
    ),
    "low_back": _m(
        "tennis_ball",
        "lying down, beside (never on) the lower spine",
        "boca arriba, junto a la parte baja de la columna (nunca sobre ella)",
    ),
    "glute": _m(
        "tennis_ball",
        "sitting or against a wall, in the buttock muscles",
        f"en una silla o {_WALL}, en los músculos del glúteo",
    ),
    "hip": _m(
        "tennis_ball", "against a wall, on the side of the hip", f"{_WALL}, en el lado de la cadera"
    ),
    "arm": _m(
        "tennis_ball",
        "against a wall, on the back of the upper arm",
        f"{_WALL}, en la parte de atrás del brazo",
    ),
    "elbow": _m(
        "tennis_ball",
        "on a table, on the forearm just below the elbow",
        "sobre una mesa, en el antebrazo justo debajo del codo",
    ),
    "forearm": _m(
        "tennis_ball",
        "on a table, along the forearm muscles",
        "sobre una mesa, a lo largo de los músculos del antebrazo",
    ),
    "wrist_hand": _m(
        "tennis_ball",
        "on a table, along the forearm and in the palm",
        "sobre una mesa, a lo largo del antebrazo y en la palma de la mano",
    ),
    "thigh": _m(
        "foam_roller",
        "front, side and back of the thigh",
        "por delante, por el lado y por detrás del muslo",
    ),
    "knee": _m(
        "foam_roller",
        "the thigh and calf above and below the knee, not the kneecap",
        "el muslo y la pantorrilla, por encima y por debajo de la rodilla, nunca la rótula",
    ),
    "leg": _m("foam_roller", "along the calf", "a lo largo de la pantorrilla"),
    "foot": _m(
        "tennis_ball",
        "underfoot, rolling the sole",
        "bajo el pie, haciendo rodar la pelota con la planta",
    ),
}

# DOMAIN.md 6, the gentle version: light pressure, seated or standing (for a client
# whose precautions or age ask for it, or rule out the usual position).
GENTLE_SELF_MASSAGE: Final[dict[Region, MassageWords]] = {
    "head": _m(
        "soft_ball",
        "standing against a wall, at the base of the skull, leaning lightly",
        f"{_STANDING}, en la base del cráneo, apoyándose con suavidad",
    ),
    "jaw": _m(
        "fingertips",
        "light, slow circles on the jaw muscle in front of the ear",
        "círculos suaves y lentos sobre el músculo de la mandíbula, delante de la oreja",
    ),
    "neck": _m(
        "fingertips",
        "seated, light circles on the muscles beside (never on) the neck bones",
        f"{_SEATED}, círculos suaves en los músculos junto a las vértebras del cuello "
        "(nunca sobre ellas)",
    ),
    "shoulder": _m(
        "soft_ball",
        "standing against a wall, on the back of the shoulder, leaning lightly",
        f"{_STANDING}, en la parte de atrás del hombro, apoyándose con suavidad",
    ),
    "shoulder_blade": _m(
        "soft_ball",
        "standing against a wall, beside the shoulder blade, lightly",
        f"{_STANDING}, junto al omóplato, con suavidad",
    ),
    "upper_back": _m(
        "soft_ball",
        "standing against a wall, between the shoulder blades, lightly",
        f"{_STANDING}, entre los omóplatos, con suavidad",
    ),
    "mid_back": _m(
        "soft_ball",
        "standing against a wall, beside (never on) the spine, lightly",
        f"{_STANDING}, junto a la columna (nunca sobre ella), con suavidad",
    ),
    "low_back": _m(
        "soft_ball",
        "standing against a wall, beside (never on) the lower spine, lightly",
        f"{_STANDING}, junto a la parte baja de la columna (nunca sobre ella), con suavidad",
    ),
    "glute": _m(
        "soft_ball",
        "standing against a wall, in the buttock muscles, leaning lightly",
        f"{_STANDING}, en los músculos del glúteo, apoyándose con suavidad",
    ),
    "hip": _m(
        "soft_ball",
        "standing against a wall, on the side of the hip, leaning lightly",
        f"{_STANDING}, en el lado de la cadera, apoyándose con suavidad",
    ),
    "arm": _m(
        "hands",
        "seated, light kneading of the back of the upper arm",
        f"{_SEATED}, amasado suave de la parte de atrás del brazo",
    ),
    "elbow": _m(
        "hands",
        "seated, light kneading of the forearm just below the elbow",
        f"{_SEATED}, amasado suave del antebrazo justo debajo del codo",
    ),
    "forearm": _m(
        "hands",
        "seated, light kneading along the forearm muscles",
        f"{_SEATED}, amasado suave a lo largo de los músculos del antebrazo",
    ),
    "wrist_hand": _m(
        "hands",
        "seated, light kneading along the forearm and in the palm",
        f"{_SEATED}, amasado suave a lo largo del antebrazo y en la palma de la mano",
    ),
    "thigh": _m(
        "hands",
        "seated, light kneading of the front and side of the thigh",
        f"{_SEATED}, amasado suave de la parte de delante y del lado del muslo",
    ),
    "knee": _m(
        "hands",
        "seated, light strokes above and below the knee, not the kneecap",
        f"{_SEATED}, pasadas suaves por encima y por debajo de la rodilla, nunca la rótula",
    ),
    "leg": _m(
        "hands",
        "seated, light strokes along the calf",
        f"{_SEATED}, pasadas suaves a lo largo de la pantorrilla",
    ),
    "foot": _m(
        "soft_ball",
        "seated, rolling the sole lightly",
        f"{_SEATED}, haciendo rodar la pelota con la planta del pie, con suavidad",
    ),
}

# The areas as a line names them. Spanish carries its article: the lines say
# "en {region}" ("en la zona lumbar"), English "on the {region}".
REGIONS: Final[dict[Region, Words]] = {
    "head": Words("head", "la cabeza"),
    "jaw": Words("jaw", "la mandíbula"),
    "neck": Words("neck", "el cuello"),
    "shoulder": Words("shoulder", "el hombro"),
    "shoulder_blade": Words("shoulder blade", "el omóplato"),
    "upper_back": Words("upper back", "la parte alta de la espalda"),
    "mid_back": Words("mid back", "la zona media de la espalda"),
    "low_back": Words("low back", "la zona lumbar"),
    "glute": Words("glute", "el glúteo"),
    "hip": Words("hip", "la cadera"),
    "arm": Words("arm", "el brazo"),
    "elbow": Words("elbow", "el codo"),
    "forearm": Words("forearm", "el antebrazo"),
    "wrist_hand": Words("wrist hand", "la muñeca y la mano"),
    "thigh": Words("thigh", "el muslo"),
    "knee": Words("knee", "la rodilla"),
    "leg": Words("leg", "la pierna"),
    "foot": Words("foot", "el pie"),
}

# Why an area has no self-massage: a precaution's code or a home rule's key
# (knowledge.PRECAUTIONS, knowledge.HOME_RULES). Spanish follows "por".
REASONS: Final[dict[str, Words]] = {
    "pregnancy": Words("pregnancy", "el embarazo"),
    "pregnancy_after_first_trimester": Words(
        "pregnancy after the first trimester", "el embarazo después del primer trimestre"
    ),
    "varicose_veins": Words("varicose veins", "las varices"),
    "hypertension": Words("hypertension", "la tensión alta"),
    "blood_thinners": Words("blood thinners", "los anticoagulantes"),
    "reduced_sensation_medication": Words(
        "reduced sensation medication", "la medicación que reduce la sensibilidad"
    ),
    "older_adult": Words(f"age {OLDER_ADULT_AGE} or over", f"tener {OLDER_ADULT_AGE} años o más"),
}

# The codes of the self-massage items (with their area) and of the two advice lines
# that name an area (``{region}``) and its reasons (``{reasons}``).
SELF_MASSAGE_ITEM: Final = "self_massage"
GENTLE_SELF_MASSAGE_ITEM: Final = "gentle_self_massage"
NO_SELF_MASSAGE_UNTIL_CLEARED: Final = "no_self_massage_until_cleared"
NO_SELF_MASSAGE_BECAUSE: Final = "no_self_massage_because"

# DOMAIN.md 2, 5 and 6: every advice line of a home program, by code.
ADVICE: Final[dict[str, Words]] = {
    # DOMAIN.md 6: aftercare every client gets
    "drink_water": Words(
        "Drink plenty of water after each session.",
        "Beba abundante agua después de cada sesión.",
    ),
    "soreness_is_normal": Words(
        "Some soreness for 24-48 hours is normal.",
        "Es normal sentir algunas molestias durante 24 a 48 horas.",
    ),
    "gentle_movement": Words(
        "Light, gentle movement helps more than complete rest.",
        "El movimiento suave y ligero le ayudará más que el reposo absoluto.",
    ),
    # DOMAIN.md 6 and 4: FMM clients practise breathing and self-release at home
    "sigh_of_relief_practice": Words(
        "Practise breathing with a sigh of relief every day.",
        "Practique cada día la respiración con un suspiro de alivio.",
    ),
    "release_practice": Words(
        "Practise sensing and releasing the contraction pattern learned in the session.",
        "Practique cómo notar y soltar el patrón de contracción que aprendió en la sesión.",
    ),
    # DOMAIN.md 2: what a precaution asks of self-massage
    "pregnancy_self_massage": Words(
        "Self-massage: no pressure on the belly or the low back.",
        "Automasaje: no presione el vientre ni la zona lumbar.",
    ),
    "varicose_veins_self_massage": Words(
        "Self-massage: never roll or press over varicose veins.",
        "Automasaje: nunca pase el rodillo ni presione sobre las varices.",
    ),
    "blood_thinners_self_massage": Words(
        "Self-massage gently: blood thinners make bruising easier.",
        "Hágase el automasaje con suavidad: con anticoagulantes salen moratones con más facilidad.",
    ),
    # DOMAIN.md 2 and 5: what a home rule asks of the stretches
    "never_flat_on_back": Words(
        "Stretch seated, standing or lying on your side: never flat on your back.",
        "Haga los estiramientos en una silla, de pie o acostándose de lado: nunca boca arriba.",
    ),
    "hold_gently_and_breathe": Words(
        "Hold stretches gently and briefly, breathing throughout: never hold your breath.",
        "Mantenga los estiramientos con suavidad y poco tiempo, respirando todo el rato: no "
        "contenga nunca la respiración.",
    ),
    "come_up_slowly": Words(
        "Come up slowly from any stretch or self-massage.",
        "Incorpórese despacio después de cualquier estiramiento o automasaje.",
    ),
    "stretch_with_support": Words(
        "Stretch seated or standing, with a chair or counter to hold on to.",
        "Haga los estiramientos en posición sentada o de pie, con una silla o una encimera a "
        "la que sujetarse.",
    ),
    # DOMAIN.md 2: areas the home program leaves out
    NO_SELF_MASSAGE_UNTIL_CLEARED: Words(
        "No self-massage on the {region} until it has cleared.",
        "No se dé automasaje en {region} hasta que esa zona se haya recuperado.",
    ),
    NO_SELF_MASSAGE_BECAUSE: Words(
        "No self-massage on the {region}: {reasons}.",
        "No se dé automasaje en {region}, por {reasons}.",
    ),
}


def stretch_text(code: str | None, language: str) -> tuple[str, str] | None:
    """A stretch's name and how-to in ``language``; None for a code not in STRETCHES."""
    words = STRETCHES.get(code or "")
    return None if words is None else (words.name.text(language), words.how.text(language))


def item_text(
    code: str,
    language: str,
    *,
    region: Region | None = None,
    reasons: Sequence[str] = (),
) -> str | None:
    """The line a self-massage or advice item says in ``language``; None when the
    catalog lacks its code, or an area or reason the line names."""
    if code in (SELF_MASSAGE_ITEM, GENTLE_SELF_MASSAGE_ITEM):
        table = SELF_MASSAGE if code == SELF_MASSAGE_ITEM else GENTLE_SELF_MASSAGE
        massage = table.get(region) if region is not None else None
        tool = TOOLS.get(massage.tool) if massage is not None else None
        if massage is None or tool is None:
            return None
        return f"{tool.text(language)}: {massage.where.text(language)}"
    words = ADVICE.get(code)
    if words is None:
        return None
    line = words.text(language)
    if "{region}" in line:
        area = REGIONS.get(region) if region is not None else None
        if area is None:
            return None
        line = line.replace("{region}", area.text(language))
    if "{reasons}" in line:
        said = [REASONS.get(reason) for reason in reasons]
        if not said or None in said:
            return None
        line = line.replace("{reasons}", _listed([w.text(language) for w in said if w], language))
    return line


def _listed(words: Sequence[str], language: str) -> str:
    """``a, b`` in English (as the plan's English lines always said), ``a, b y c`` in
    Spanish."""
    if language == "es" and len(words) > 1:
        return f"{', '.join(words[:-1])} y {words[-1]}"
    return ", ".join(words)
