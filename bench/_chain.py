"""The chain the pipeline bench runs against, and the intakes it submits.

The demo chain has two locations: a few hundred nine-visit plans fill their
sixteen-week horizon, after which plans are waitlisted and the fan-out (and the
work per intake) changes under the measurement. The bench chain clones the demo's
Beaverton location (its hours, rooms and policy) into ``sites`` locations with
three therapists each and spreads the intakes over them, so every intake books
its visits into a calendar that stays nearly empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEMO_CHAIN = Path(__file__).resolve().parent.parent / "deploy" / "dev" / "chain.yaml"
FRONT_DESK_KEY = "bench-frontdesk-all-sites"


def write_chain(path: Path, sites: int) -> Path:
    """Write the bench chain (``sites`` clones of the demo's Beaverton) to ``path``."""
    demo: dict[str, Any] = yaml.safe_load(DEMO_CHAIN.read_text())
    beaverton = next(loc for loc in demo["locations"] if loc["id"] == "beaverton")
    ids = [f"site-{n}" for n in range(sites)]
    locations = [{**beaverton, "id": site, "name": f"Site {n}"} for n, site in enumerate(ids)]
    therapists = [
        {
            "id": f"t-{n}-{k}",
            "name": f"Therapist {n}-{k}",
            "locations": [site],
            "skills": ["nmt", "fmm"] if k == 0 else ["nmt"],
        }
        for n, site in enumerate(ids)
        for k in range(3)
    ]
    keys = [{"key": FRONT_DESK_KEY, "role": "frontdesk", "locations": ids, "name": "Bench"}]
    document = {**demo, "locations": locations, "therapists": therapists, "api_keys": keys}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def intake_document(n: int, *, sites: int, run: str) -> dict[str, Any]:
    """The ``n``-th intake of a run: a chronic neck and shoulder (a nine-visit plan),
    a client of its own (a new e-mail), at site ``n mod sites``."""
    return {
        "location_id": f"site-{n % sites}",
        "client": {
            "name": "Bench Client",
            "email": f"bench-{run}-{n}@example.com",
            "contact_consent": {"email": True},
        },
        "complaints": [
            {
                "region": "neck",
                "side": "right",
                "intensity": 7,
                "qualities": ["dull", "ache"],
                "onset": "2026-06-01",
                "aggravating": ["computer work"],
                "improving": True,
            },
            {
                "region": "shoulder",
                "side": "right",
                "intensity": 5,
                "qualities": ["tender"],
                "onset": "2026-09-15",
            },
        ],
        "goals": ["turn my head without pain"],
        "preferences": {"modality": "either"},
    }
