"""Examples for the intake service's OpenAPI document."""

from __future__ import annotations

from typing import Any, Final

from shared.errors import errors

INTAKE_EXAMPLE: Final[dict[str, Any]] = {
    "location_id": "beaverton",
    "client": {
        "name": "Jordan Rivera",
        "email": "jordan@example.com",
        "phone": "+15035550142",
        "date_of_birth": "1984-02-01",
        "language": "en",
        "contact_consent": {"email": True, "sms": False},
    },
    "complaints": [
        {
            "region": "neck",
            "side": "right",
            "intensity": 7,
            "qualities": ["dull", "ache"],
            "frequency": "daily, worse in the morning",
            "onset": "2026-03-01",
            "episode_duration": "hours",
            "aggravating": ["computer work"],
            "relieving": ["heat"],
            "provoking_movements": ["rotation right"],
            "improving": False,
        }
    ],
    "history": {"old_injuries": ["whiplash 2019"], "work_posture": ["computer work"]},
    "health": {
        "contraindications": [{"code": "skin_condition", "region": "shoulder"}],
        "precautions": [{"code": "hypertension"}],
        "medications": [],
    },
    "goals": ["turn my head without pain"],
    "preferences": {"modality": "either", "days": ["mon", "wed"], "times": ["morning"]},
    "consent": {"treatment": True},
}

SECTION_PATCH_EXAMPLES: Final[dict[str, Any]] = {
    "client": {
        "summary": "the client page",
        "value": {"client": INTAKE_EXAMPLE["client"]},
    },
    "complaints": {
        "summary": "the pain description (replaces the list)",
        "value": {"complaints": INTAKE_EXAMPLE["complaints"]},
    },
    "health": {
        "summary": "health questions, answered 'none'",
        "value": {"health": {"contraindications": [], "precautions": []}},
    },
    "consent": {
        "summary": "the consent page",
        "value": {"consent": {"treatment": True, "contact": {"email": True, "sms": True}}},
    },
}

__all__ = ["INTAKE_EXAMPLE", "SECTION_PATCH_EXAMPLES", "errors"]
