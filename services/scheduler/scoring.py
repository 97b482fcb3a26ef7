"""How booking chooses between the free slots of one day (pure).

The cadence picks the day: a session goes on the first local day from its target
that has a fitting slot (``booking.py``). Among that day's free slots, the one with
the highest ``score`` wins; ties go to the earlier start, then the lower therapist id.

The weights, and why:

================  ======  ===========================================================
term              weight  why
================  ======  ===========================================================
same therapist    100     continuity of care (one therapist who knows the client's
                          trigger points) outweighs every convenience below together
routine time      6       the clock time of the client's previous visit: clients keep
                          a routine (their chosen times of day are a filter already)
touching side     3       per side of the slot that meets another visit of the
                          therapist (after its turnover) or the start or end of
                          their hours: fewer gaps in the therapist's day
lateness          -0.5/h  per hour after the earliest allowed start: sooner is better,
                          but not at the price of a gap or a routine
================  ======  ===========================================================

A day has at most some twelve working hours, so lateness costs at most 6: a slot
that closes a gap on both sides beats one that is merely earlier, and the same
therapist beats everything.
"""

from __future__ import annotations

from dataclasses import dataclass

SAME_THERAPIST = 100.0
ROUTINE_TIME = 6.0
TOUCHING_SIDE = 3.0
LATENESS_PER_HOUR = 0.5


@dataclass(frozen=True)
class Candidate:
    """What the score reads of one free slot."""

    same_therapist: bool  # the therapist of the plan's previous visit
    routine_time: bool  # starts at the previous visit's local clock time
    touching: int  # 0..2 sides without a gap in the therapist's day
    hours_after_first: float  # after the earliest start the session may take


def score(candidate: Candidate) -> float:
    """The slot's score: higher is better."""
    return (
        SAME_THERAPIST * candidate.same_therapist
        + ROUTINE_TIME * candidate.routine_time
        + TOUCHING_SIDE * candidate.touching
        - LATENESS_PER_HOUR * max(candidate.hours_after_first, 0.0)
    )


__all__ = ["Candidate", "score"]
