"""The home program the client leaves with (DOMAIN.md 6). Pure."""

from __future__ import annotations

from collections.abc import Sequence

from services.planner import knowledge as kb
from shared import body_map as bm
from shared.events.plans import HomeProgram, Stretch
from shared.vocabulary import Modality, PrecautionCode, Region


def home_program(
    regions: Sequence[Region],
    *,
    modality: Modality,
    precautions: Sequence[PrecautionCode] = (),
    excluded: Sequence[Region] = (),
) -> HomeProgram:
    """DOMAIN.md 6: 2-3 stretches (each region's best in turn, never more than
    3), a self-massage tool per region, and the aftercare advice."""
    fewest, most = kb.STRETCHES_PER_PLAN
    wanted = min(most, max(fewest, len(regions)))
    picked: dict[str, Region] = {}
    rounds = max((len(bm.STRETCHES_FOR[r]) for r in regions), default=0)
    for i in range(rounds):
        for region in regions:
            options = bm.STRETCHES_FOR[region]
            if i < len(options) and len(picked) < wanted:
                picked.setdefault(options[i], region)
    advice = [*kb.AFTERCARE, *(kb.FMM_AFTERCARE if modality == "fmm" else ())]
    advice += [line for p in precautions for line in kb.PRECAUTIONS[p].advice]
    advice += [f"No self-massage on the {r} until it has cleared." for r in excluded]
    return HomeProgram(
        stretches=[Stretch(name=n, region=r, how=bm.STRETCHES[n]) for n, r in picked.items()],
        self_massage=_unique(
            [f"{bm.SELF_MASSAGE[r][0]}: {bm.SELF_MASSAGE[r][1]}" for r in regions]
        ),
        advice=_unique(advice),
    )


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))
