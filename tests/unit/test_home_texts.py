"""The home program's catalog (shared/home_texts.py): every code the planner can put in
a plan has its words in every language messages are written in, the plan's English
lines are the catalog's English, and the body map and the planner's knowledge keep no
English of their own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import combinations
from typing import get_args

import pytest

from services.notifier.messages import LANGUAGES as MESSAGE_LANGUAGES
from services.planner import knowledge as kb
from services.planner.home import home_plan
from shared import body_map as bm
from shared import home_texts as texts
from shared.events.intake import Precaution
from shared.events.plans import HomeProgram
from shared.vocabulary import Modality, PrecautionCode, Region

REGIONS: tuple[Region, ...] = get_args(Region)
PRECAUTIONS: tuple[PrecautionCode, ...] = get_args(PrecautionCode)
MODALITIES: tuple[Modality, ...] = ("nmt", "fmm")
AGES = (None, 40, kb.OLDER_ADULT_AGE + 5)
STAGES = (None, "first trimester")  # unstated counts as after the first trimester
CODE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


def limit_texts() -> list[str]:
    """One therapist's note naming each limited movement and posture finding."""
    said = []
    for finding in (*bm.MOVEMENTS, *bm.POSTURES):
        said.append(
            finding.phrases[0] if finding.phrases else f"{finding.parts[0]} {finding.motions[0]}"
        )
    return said


def every_program() -> Iterator[HomeProgram]:
    """The home programs of every area alone and beside the next, under every set of
    precautions (pregnancy at both stages), at every age band, for both methods, with
    and without an excluded area; then with every limited movement and posture."""
    for i, region in enumerate(REGIONS):
        other = REGIONS[(i + 1) % len(REGIONS)]
        for size in range(len(PRECAUTIONS) + 1):
            for chosen in combinations(PRECAUTIONS, size):
                for stage in STAGES if "pregnancy" in chosen else (None,):
                    precautions = [
                        Precaution(code=c, detail=stage if c == "pregnancy" else None)
                        for c in chosen
                    ]
                    for age in AGES:
                        for modality in MODALITIES:
                            for regions, excluded in (([region], [other]), ([region, other], [])):
                                yield home_plan(
                                    regions,
                                    modality=modality,
                                    precautions=precautions,
                                    excluded=excluded,
                                    age=age,
                                ).program
    for said in limit_texts():
        for region in REGIONS:
            for chosen in ((), ("pregnancy", "hypertension"), ("varicose_veins",)):
                yield home_plan(
                    [region],
                    modality="nmt",
                    precautions=[Precaution(code=c) for c in chosen],
                    limits=[said],
                    posture=[said],
                ).program


PROGRAMS = list(every_program())


def test_the_planner_produces_what_the_catalog_words_in_every_language() -> None:
    stretches, items = set(), set()
    for program in PROGRAMS:
        for stretch in program.stretches:
            assert stretch.code is not None, stretch
            stretches.add(stretch.code)
            assert texts.stretch_text(stretch.code, "en") == (stretch.name, stretch.how)
        for lines, coded in (
            (program.self_massage, program.self_massage_items),
            (program.advice, program.advice_items),
        ):
            assert len(lines) == len(coded), program
            for line, item in zip(lines, coded, strict=True):
                said = {
                    language: texts.item_text(
                        item.code, language, region=item.region, reasons=item.reasons
                    )
                    for language in texts.LANGUAGES
                }
                assert said["en"] == line, item
                assert said["es"] is not None and said["es"] != line, item
                items.add((item.code, item.region, tuple(item.reasons)))
    for code in stretches:
        words = texts.STRETCHES[code]
        assert words.name.es != words.name.en and words.how.es != words.how.en, code
    # the walk reaches every stretch, both self-massages of every area, every advice line
    assert stretches == set(texts.STRETCHES)
    massages = (texts.SELF_MASSAGE_ITEM, texts.GENTLE_SELF_MASSAGE_ITEM)
    massaged = {(code, region) for code, region, _ in items if code in massages}
    assert massaged == {(code, region) for code in massages for region in REGIONS}
    assert {code for code, _, _ in items} - set(massages) == set(texts.ADVICE)
    because = {reason for code, _, reasons in items for reason in reasons}
    assert because and because <= set(texts.REASONS)


def test_the_catalog_is_written_in_every_message_language() -> None:
    assert texts.LANGUAGES == MESSAGE_LANGUAGES
    entries = [
        *(w for s in texts.STRETCHES.values() for w in (s.name, s.how)),
        *texts.TOOLS.values(),
        *(m.where for m in (*texts.SELF_MASSAGE.values(), *texts.GENTLE_SELF_MASSAGE.values())),
        *texts.REGIONS.values(),
        *texts.REASONS.values(),
        *texts.ADVICE.values(),
    ]
    for words in entries:
        for language in texts.LANGUAGES:
            assert words.text(language).strip(), words
        assert words.es != words.en, words
        # a placeholder one language names, the other names too
        assert re.findall(r"\{\w+\}", words.en) == re.findall(r"\{\w+\}", words.es), words
    with pytest.raises(ValueError, match="'fr'"):
        texts.ADVICE["drink_water"].text("fr")


def test_codes_are_stable_identifiers_and_every_area_has_its_words() -> None:
    for code in (*texts.STRETCHES, *texts.TOOLS, *texts.ADVICE, *texts.REASONS):
        assert CODE.fullmatch(code), code
    assert {
        m.tool for m in (*texts.SELF_MASSAGE.values(), *texts.GENTLE_SELF_MASSAGE.values())
    } <= (set(texts.TOOLS))
    for table in (texts.SELF_MASSAGE, texts.GENTLE_SELF_MASSAGE, texts.REGIONS):
        assert set(table) == set(REGIONS)
    assert set(texts.REASONS) == set(PRECAUTIONS) | set(kb.HOME_RULES)


def test_the_body_map_and_the_knowledge_take_their_english_from_the_catalog() -> None:
    assert {s.name.en: s.how.en for s in texts.STRETCHES.values()} == bm.STRETCHES
    assert set(bm.STRETCH_CODES) == set(bm.STRETCH_POSITIONS) == set(bm.STRETCHES)
    for table, words in (
        (bm.SELF_MASSAGE, texts.SELF_MASSAGE),
        (bm.GENTLE_SELF_MASSAGE, texts.GENTLE_SELF_MASSAGE),
    ):
        assert table == {r: (texts.TOOLS[m.tool].en, m.where.en) for r, m in words.items()}
    advised = [
        *kb.AFTERCARE,
        *kb.FMM_AFTERCARE,
        *(code for rule in kb.PRECAUTIONS.values() for code in rule.advice),
        *(code for rule in kb.HOME_RULES.values() for code in rule.advice),
    ]
    assert set(advised) <= set(texts.ADVICE)  # codes there, never sentences
    for key, rule in kb.HOME_RULES.items():
        assert texts.REASONS[key].en == rule.why, key


def test_a_line_with_an_unknown_code_area_or_reason_has_no_words() -> None:
    assert texts.item_text("no_such_line", "es") is None
    assert texts.item_text(texts.SELF_MASSAGE_ITEM, "es") is None
    assert texts.item_text(texts.NO_SELF_MASSAGE_UNTIL_CLEARED, "es") is None
    assert (
        texts.item_text(texts.NO_SELF_MASSAGE_BECAUSE, "es", region="leg", reasons=["zx"]) is None
    )
    assert texts.stretch_text("no_such_stretch", "es") is None
    assert texts.stretch_text(None, "es") is None


def test_the_lines_that_name_an_area_and_its_reasons() -> None:
    def say(language: str) -> str | None:
        return texts.item_text(
            texts.NO_SELF_MASSAGE_BECAUSE,
            language,
            region="low_back",
            reasons=["pregnancy", "varicose_veins"],
        )

    assert say("en") == "No self-massage on the low back: pregnancy, varicose veins."
    assert say("es") == ("No se dé automasaje en la zona lumbar, por el embarazo y las varices.")
    assert texts.item_text(texts.NO_SELF_MASSAGE_UNTIL_CLEARED, "es", region="shoulder") == (
        "No se dé automasaje en el hombro hasta que esa zona se haya recuperado."
    )
