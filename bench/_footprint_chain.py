"""The chain the footprint bench runs against, and the intakes it submits.

The chain is the demo chain (deploy/dev/chain.yaml) with each location cloned
``copies`` times - its hours, rooms, policy and therapists - so a few hundred plans
book into calendars that stay open instead of filling the demo's sixteen-week
horizon and going to the waitlist (which would change what each intake keeps).

The intakes are varied and seeded: one to three complaints of the demo's regions,
acute or chronic (3 to 12 sessions), 15% asking for FMM, 20% with two or three
preferred days, 20% with a preferred time of day, 15% at most one visit a week,
e-mail and sometimes SMS consent. A *declined* intake names a deep vein thrombosis,
which screening refers: the planner declines it (``plan.declined``), nothing is
booked.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

DEMO_CHAIN = Path(__file__).resolve().parent.parent / "deploy" / "dev" / "chain.yaml"
FRONT_DESK_KEY = "footprint-frontdesk-all"
ADMIN_KEY = "footprint-admin"
REGIONS = ["neck", "shoulder", "upper_back", "low_back", "hip", "glute", "thigh", "leg", "arm"]
QUALITIES = ["deep", "ache", "dull", "sharp", "tender"]
TIMES = ["morning", "afternoon", "evening"]
DVT_ANSWERED = {"calf_swelling": False, "calf_warmth_redness": False, "long_journey_recent": False}
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def clone_id(base: str, copy: int) -> str:
    return base if copy == 0 else f"{base}-{copy + 1}"


def write_chain(path: Path, copies: int) -> dict[str, Any]:
    """Write the demo chain with every location (and its therapists) ``copies`` times to
    ``path``; the document written."""
    demo: dict[str, Any] = yaml.safe_load(DEMO_CHAIN.read_text())
    locations = [
        {**loc, "id": clone_id(loc["id"], n), "name": f"{loc['name']} {n + 1}"}
        for n in range(copies)
        for loc in demo["locations"]
    ]
    therapists = []
    for n in range(copies):
        for therapist in demo["therapists"]:
            copy = {
                **therapist,
                "id": clone_id(therapist["id"], n),
                "locations": [clone_id(loc, n) for loc in therapist["locations"]],
            }
            if "hours_at" in therapist:
                copy["hours_at"] = {clone_id(k, n): v for k, v in therapist["hours_at"].items()}
            therapists.append(copy)
    ids = [loc["id"] for loc in locations]
    keys = [
        {"key": FRONT_DESK_KEY, "role": "frontdesk", "locations": ids, "name": "Footprint"},
        {"key": ADMIN_KEY, "role": "admin", "locations": ["*"], "name": "Footprint admin"},
    ]
    document = {**demo, "locations": locations, "therapists": therapists, "api_keys": keys}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return document


def intake_document(
    rng: random.Random, n: int, *, location: dict[str, Any], today: date, run: str, declined: bool
) -> dict[str, Any]:
    """The ``n``-th intake of a run at ``location`` on the clinic's ``today``."""
    complaints = [
        {
            "region": region,
            "side": rng.choice(["left", "right", "both"]),
            "intensity": rng.randint(3, 9),
            "qualities": rng.sample(QUALITIES, rng.randint(1, 2)),
            # acute under 3 months, chronic after: about half each
            "onset": (
                today - timedelta(days=rng.choice([rng.randint(7, 80), rng.randint(100, 900)]))
            ).isoformat(),
            "aggravating": rng.sample(["computer work", "lifting", "driving", "sleep"], 1),
            "improving": True,  # never the red flag (new dull pain, not improving)
        }
        for region in rng.sample(REGIONS, rng.choice([1, 1, 2, 2, 3]))
    ]
    open_days = [d for d in WEEKDAYS if location["hours"].get(d)]
    preferences: dict[str, Any] = {"modality": "fmm" if rng.random() < 0.15 else "either"}
    if rng.random() < 0.2:
        preferences["days"] = sorted(rng.sample(open_days, 3), key=WEEKDAYS.index)
    if rng.random() < 0.2:
        preferences["times"] = [rng.choice(TIMES)]
    if rng.random() < 0.15:
        preferences["max_sessions_per_week"] = 1
    sms = rng.random() < 0.3
    client: dict[str, Any] = {
        "name": f"Footprint Client {n}",
        "email": f"footprint-{run}-{n}@example.com",
        "contact_consent": {"email": True, "sms": sms},
    }
    if sms:
        client["phone"] = f"+1503555{n % 10000:04d}"
    # a sore calf asks the DVT questions: answered, with no sign of one
    health: dict[str, Any] = {"dvt_signs": DVT_ANSWERED}
    if declined:
        health = {"contraindications": [{"code": "dvt"}]}
    return {
        "location_id": location["id"],
        "client": client,
        "complaints": complaints,
        "health": health,
        "goals": ["move without pain"],
        "preferences": preferences,
    }
