"""The fetch wait rule: short while records flow, the idle wait after a quiet spell."""

from __future__ import annotations

from shared.fetch_pacing import next_wait_ms

PACE = {"busy_ms": 25, "idle_ms": 250, "idle_after_s": 2.0}


def test_records_keep_the_wait_short() -> None:
    assert next_wait_ms(got_records=True, idle_for_s=0.0, **PACE) == 25


def test_an_empty_fetch_within_the_quiet_spell_keeps_it_short() -> None:
    assert next_wait_ms(got_records=False, idle_for_s=1.9, **PACE) == 25


def test_a_consumer_idle_past_the_spell_waits_longer() -> None:
    assert next_wait_ms(got_records=False, idle_for_s=2.0, **PACE) == 250


def test_an_idle_wait_below_the_busy_one_never_shortens_it() -> None:
    assert (
        next_wait_ms(got_records=False, idle_for_s=9.0, busy_ms=500, idle_ms=250, idle_after_s=2)
        == 500
    )
