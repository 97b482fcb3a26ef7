"""What a complaint says about the pain: acute or chronic, and nerve signs
(DOMAIN.md 1).

Shared clinical knowledge: intake and the planner apply the same rule. Pure.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Final

from shared.events.intake import Complaint
from shared.vocabulary import NERVE_SIGN_QUALITIES, Condition, Quality

# DOMAIN.md 1: acute = less than 3 months since onset, chronic = 3 months or more.
CHRONIC_AFTER_MONTHS: Final = 3
CHRONIC_AFTER_WEEKS: Final = 13  # the same threshold when the client gives weeks, not a date

# DOMAIN.md 5: personal factors, age among them, matter [002] ("your age, overall
# health, stress levels ... all play important roles in your recovery timeline"); and
# DOMAIN.md 2: severe osteoporosis is a contraindication. The seeds give no age: from
# 65, the usual line for an older adult, screening asks about osteoporosis and the
# plan's pressure is gentler (a clinic default, like every number here).
OLDER_ADULT_AGE: Final = 65


def months_since(complaint: Complaint, *, on: date) -> int:
    """Whole months the complaint has lasted on ``on`` (onset date, else weeks)."""
    if complaint.onset is None:
        return (complaint.duration_weeks or 0) * 12 // 52
    months = (on.year - complaint.onset.year) * 12 + on.month - complaint.onset.month
    if _add_months(complaint.onset, months) > on:
        months -= 1
    return max(0, months)


def condition_for(complaint: Complaint, *, on: date) -> Condition:
    """DOMAIN.md 1: acute under 3 months since onset (13 weeks), chronic from then on."""
    if complaint.onset is None and complaint.duration_weeks is not None:
        return "chronic" if complaint.duration_weeks >= CHRONIC_AFTER_WEEKS else "acute"
    return "chronic" if months_since(complaint, on=on) >= CHRONIC_AFTER_MONTHS else "acute"


def age_on(date_of_birth: date, on: date) -> int:
    """Whole years of age on ``on`` (a 29 February birthday counts from 1 March)."""
    had_birthday = (on.month, on.day) >= (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - (0 if had_birthday else 1)


def nerve_signs(complaint: Complaint) -> list[Quality]:
    """DOMAIN.md 1: the complaint's qualities that suggest nerve compression, sorted."""
    return sorted(NERVE_SIGN_QUALITIES.intersection(complaint.qualities))


def _add_months(day: date, months: int) -> date:
    year, month0 = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))
