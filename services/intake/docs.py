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

# the answers to INTAKE_EXAMPLE and to opening a session, as the service gave them
ACCEPTED_EXAMPLE: Final[dict[str, Any]] = {
    "intake_id": "dacdebcc-9cea-46fb-99b2-a20de401f8a4",
    "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
    "screening": {
        "outcome": "modify",
        "reasons": [
            {
                "rule": "DOMAIN.md 2: certain skin conditions in the treatment area",
                "code": "skin_condition",
                "action": "modify",
                "detail": "skin condition: no direct work on the affected skin",
                "region": "shoulder",
            },
            {
                "rule": "DOMAIN.md 2: hypertension",
                "code": "hypertension",
                "action": "modify",
                "detail": "hypertension: treat with special care",
                "region": None,
            },
        ],
        "excluded_regions": ["shoulder"],
        "modifications": [
            "no work on the shoulder: skin condition: no direct work on the affected skin",
            "shorter, gentler ischemic compression holds",
            "lower pressure target than the usual 6-7 of 10 (DOMAIN.md 4)",
        ],
        "recheck_on": None,
        "referral_recommended": False,
        "medical_check_required": False,
        "front_desk": [],
    },
    "findings": [
        {
            "region": "neck",
            "side": "right",
            "condition": "chronic",
            "nerve_signs": [],
            "assess_first": ["levator scapulae", "splenius capitis", "cervical multifidi"],
        }
    ],
    "possible_duplicate": False,
    "contact_change_id": None,
}
SESSION_CREATED_EXAMPLE: Final[dict[str, Any]] = {
    "session_id": "4ad86616-4fce-4d0c-beac-49a757a3b0ab",
    "expires_at": "2027-03-11T19:10:49.064684Z",
    "revision": 0,
}

__all__ = [
    "ACCEPTED_EXAMPLE",
    "INTAKE_EXAMPLE",
    "SECTION_PATCH_EXAMPLES",
    "SESSION_CREATED_EXAMPLE",
    "errors",
]
