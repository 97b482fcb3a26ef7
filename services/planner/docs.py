"""Examples for the planner's OpenAPI document: answers the service gave in a run of the
demo chain, shortened; tests/unit/test_openapi_documents.py validates each against its
schema."""

from __future__ import annotations

from typing import Any, Final

CURRENT_PLAN_EXAMPLE: Final[dict[str, Any]] = {
    "status": "active",
    "event_type": "plan.created",
    "plan": {
        "plan_id": "284bb0b3-4e30-504a-94bb-ddc1f690177d",
        "version": 1,
        "client_id": "b43e70ab-e439-4db9-ad23-0d5ef4fb5411",
        "location_id": "beaverton",
        "intake_id": "dacdebcc-9cea-46fb-99b2-a20de401f8a4",
        "condition": "chronic",
        "modality": "nmt",
        "sessions_total": 9,
        "phases": [
            {
                "name": "intensive",
                "sessions": 6,
                "interval_days": 3,
                "per_week": 2.0,
                "weeks": 3,
                "rrule": "FREQ=DAILY;INTERVAL=3;COUNT=6",
            },
            {
                "name": "step-down",
                "sessions": 1,
                "interval_days": 7,
                "per_week": 1.0,
                "weeks": 1,
                "rrule": "FREQ=WEEKLY;INTERVAL=1;COUNT=1",
            },
            {
                "name": "taper",
                "sessions": 2,
                "interval_days": 14,
                "per_week": 0.5,
                "weeks": 4,
                "rrule": "FREQ=WEEKLY;INTERVAL=2;COUNT=2",
            },
        ],
        "visit_minutes": 60,
        "protocol": [
            {
                "order": 1,
                "technique": "warming_strokes",
                "targets": ["neck", "shoulder_blade"],
                "hold_seconds": None,
                "pressure_target": None,
                "notes": "Visit 1: assess first (history, posture, range of "
                "motion, palpation; DOMAIN.md 3). Until an assessment "
                "names trigger points, the targets are the muscles that "
                "commonly refer to the complaint areas. (effleurage, "
                "petrissage and kneading to warm the tissue)",
            },
            {
                "order": 2,
                "technique": "positional_release",
                "targets": ["levator scapulae", "splenius capitis", "cervical multifidi"],
                "hold_seconds": [90, 90],
                "pressure_target": None,
                "notes": "move to the position of comfort, shorten the muscle, hold, return slowly",
            },
            {
                "order": 3,
                "technique": "ischemic_compression",
                "targets": ["levator scapulae", "splenius capitis", "cervical multifidi"],
                "hold_seconds": [10, 20],
                "pressure_target": 5,
                "notes": "steady pressure against bone, then gradual release",
            },
            {
                "order": 4,
                "technique": "stretching",
                "targets": ["levator scapulae", "splenius capitis", "cervical multifidi"],
                "hold_seconds": None,
                "pressure_target": None,
                "notes": "finish by stretching to re-educate the muscle to its length",
            },
        ],
        "modifications": [
            {
                "code": "hypertension_care",
                "detail": "moderate pressure, no head-down positions, sit up slowly",
            },
            {
                "code": "shorter_holds",
                "detail": "shorter, gentler holds: ischemic compression 10-20 "
                "s, sustained pressure 30-60 s",
            },
            {
                "code": "lower_pressure",
                "detail": "pressure target 5/10 instead of 6/10 (hypertension)",
            },
            {
                "code": "excluded_region",
                "detail": "no work on the shoulder: local contraindication",
            },
        ],
        "excluded_regions": ["shoulder"],
        "target_regions": ["neck"],
        "home_program": {
            "stretches": [
                {
                    "name": "upper trapezius stretch",
                    "region": "neck",
                    "how": "Sit tall, hold the chair seat, tilt ear to shoulder; 30 s a side.",
                    "code": "upper_trapezius_stretch",
                }
            ],
            "self_massage": [
                "fingertips: seated, light circles on the muscles beside (never on) the neck bones"
            ],
            "advice": [
                "Drink plenty of water after each session.",
                "Some soreness for 24-48 hours is normal.",
                "Light, gentle movement helps more than complete rest.",
            ],
            "self_massage_items": [
                {"code": "gentle_self_massage", "region": "neck", "reasons": []}
            ],
            "advice_items": [
                {"code": "drink_water", "region": None, "reasons": []},
                {"code": "soreness_is_normal", "region": None, "reasons": []},
                {"code": "gentle_movement", "region": None, "reasons": []},
            ],
        },
        "review_after_sessions": 4,
        "review_by": "2027-03-22",
        "scheduling": {
            "required_skills": ["nmt"],
            "therapist_id": None,
            "days": ["mon", "wed"],
            "times": ["morning"],
            "max_sessions_per_week": 2,
        },
        "rationale": [
            {
                "rule": "DOMAIN.md 1: acute under 3 months, chronic from 3 months",
                "detail": "neck pain since 2026-03-01 (12 months) -> chronic",
            },
            {
                "rule": "DOMAIN.md 5: chronic course 6-12 sessions",
                "detail": "neck pain since 2026-03-01 (12 months) at intensity 7 "
                "with 1 region(s), 1 precaution(s) -> 9 sessions",
            },
            {
                "rule": "DOMAIN.md 5: chronic cadence 1-2 per week for 3-6 weeks, "
                "then every two weeks; 24-48 h soreness gap",
                "detail": "policy at most 2/week -> intensive: 6 every 3 days; "
                "step-down: 1 every 7 days; taper: 2 every 14 days",
            },
            {
                "rule": "DOMAIN.md 4: modality choice; FMM needs a therapist who practises it",
                "detail": "client prefers either -> nmt, skills nmt",
            },
        ],
        "created_at": "2027-03-08T19:10:37.944889Z",
        "awaiting_medical_check": None,
        "reason": None,
        "change": None,
        "sessions_done": None,
        "referral": None,
    },
    "decline": None,
    "completion": None,
    "merged_from": None,
    "progress": {
        "sessions_done": 1,
        "sessions_total": 9,
        "pain_carried_in": [7],
        "trajectory": [{"at": "2027-03-10T17:38:18.053312Z", "pain": 7, "source": "visit"}],
        "improvement": None,
        "next_review_after_sessions": 4,
        "review_by": "2027-03-22",
        "finished": False,
    },
}
