"""The calendar script against the run's real Redis: what it refuses (an interval
overlapping one held for the same therapist, room or client, here or at another
location, or another of the same change, or of a change racing it without the
lock), what it lets through (back to back, a
visit moving within its own old place), what a move and a cancel leave in the
indexes, the outbox order, the lock it lets go, and changes larger than one
command's arguments."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from services.scheduler.directory import Directory
from services.scheduler.store import CalendarChange, CalendarStore, Overlap
from shared.events import VisitBooked
from shared.infra import Infra
from shared.outbox import epoch_ms
from shared.redis_store import Keys

pytestmark = pytest.mark.integration

MONDAY = datetime(2027, 3, 8, 17, tzinfo=UTC)  # 09:00 in Beaverton
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
async def redis_client(infra: Infra) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """One client for the module; every test's keys under one prefix, removed at the end."""
    client = aioredis.Redis.from_url(infra.redis_url, decode_responses=True)
    prefix = f"test-calendar-{uuid.uuid4().hex[:8]}"
    yield client, prefix
    found = [k async for k in client.scan_iter(f"{prefix}-*", count=1000)]
    if found:
        await client.delete(*found)
    await client.aclose()


@pytest.fixture
def calendar(
    redis_client: tuple[aioredis.Redis, str],
) -> tuple[CalendarStore, aioredis.Redis, Keys]:
    client, prefix = redis_client
    keys = Keys(f"{prefix}-{uuid.uuid4().hex[:8]}", "scheduler")
    return CalendarStore(client, keys), client, keys


def visit(
    name: str,
    *,
    at: datetime = MONDAY,
    minutes: int = 60,
    therapist: str | None = None,
    room: int = 1,
    client: str | None = None,
    location: str = "beaverton",
) -> VisitBooked:
    return VisitBooked(
        visit_id=f"visit-{name}",
        plan_id=f"plan-{name}",
        client_id=client or f"client-{name}",
        location_id=location,
        therapist_id=therapist or f"t-{name}",
        room=room,
        start=at,
        end=at + timedelta(minutes=minutes),
        timezone="America/Los_Angeles",
        sequence=1,
        sessions_total=1,
    )


async def hold(store: CalendarStore, *visits: VisitBooked) -> None:
    await store.apply(CalendarChange(hold=list(visits)), now=MONDAY - timedelta(days=7))


async def held_ids(store: CalendarStore, location: str = "beaverton") -> list[str]:
    found = await store.intervals(location, start=MONDAY, end=MONDAY + timedelta(days=60))
    return sorted(i.visit_id for i in found)


@pytest.mark.parametrize(
    "clash",
    [
        {"therapist": "t-held", "room": 2},  # the same therapist, another room
        {"room": 1},  # the same room, another therapist
        {"client": "client-held", "room": 2, "location": "brooklyn"},  # the client elsewhere
    ],
)
async def test_an_interval_overlapping_a_held_one_is_refused_and_nothing_is_written(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys], clash: dict[str, object]
) -> None:
    store, client, keys = calendar
    await hold(store, visit("held", therapist="t-held", room=1, client="client-held"))
    late = visit("late", at=MONDAY + timedelta(minutes=30), **clash)  # type: ignore[arg-type]
    change = CalendarChange(hold=[late], records={"mark": "written"})
    with pytest.raises(Overlap, match="visit-late overlaps visit visit-held"):
        await store.apply(change, now=MONDAY)
    assert await client.get(keys("visit", late.visit_id)) is None
    assert await store.record("mark") is None


async def test_changes_racing_for_one_slot_without_the_lock_book_it_once(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    """Double booking is ruled out by the script's check, not by the location's lock:
    changes computed from the same empty calendar and sent at once, none holding the
    lock, each wanting the same therapist or the same room in overlapping hours."""
    store, _, _ = calendar
    racing = [
        visit(f"race{n}", at=MONDAY + timedelta(minutes=10 * n), therapist="t-same", room=n + 2)
        for n in range(6)
    ] + [visit(f"room{n}", at=MONDAY + timedelta(minutes=5 * n), room=1) for n in range(6)]
    outcomes = await asyncio.gather(*(hold(store, v) for v in racing), return_exceptions=True)
    won = [v.visit_id for v, o in zip(racing, outcomes, strict=True) if o is None]
    assert all(o is None or isinstance(o, Overlap) for o in outcomes), outcomes
    held = await store.intervals("beaverton", start=MONDAY, end=MONDAY + timedelta(days=1))
    assert sorted(i.visit_id for i in held) == sorted(won)
    for a in held:
        for b in held:
            same = a.therapist_id == b.therapist_id or a.room == b.room
            if a.visit_id < b.visit_id and same:
                assert a.end <= b.start or b.end <= a.start, (a, b)
    # one change of each group wins: the first Redis runs; every other overlaps it
    assert len([w for w in won if w.startswith("visit-race")]) == 1
    assert len([w for w in won if w.startswith("visit-room")]) == 1


async def test_back_to_back_fits_and_a_long_visit_reaches_past_the_start(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, _, _ = calendar
    await hold(store, visit("long", at=MONDAY - timedelta(hours=4), minutes=240, therapist="t"))
    await hold(store, visit("next", at=MONDAY, therapist="t"))  # starts as the long one ends
    longer = visit("longer", at=MONDAY + timedelta(minutes=61), minutes=240, therapist="u")
    await hold(store, longer)
    inside = visit("inside", at=MONDAY + timedelta(hours=4), therapist="u")
    with pytest.raises(Overlap, match="visit-inside overlaps visit visit-longer"):
        await hold(store, inside)


async def test_the_clients_visits_are_checked_over_the_whole_change(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    """A plan's visits weeks apart, the client holding another visit between them."""
    store, _, _ = calendar
    week = timedelta(days=7)
    await hold(store, visit("between", at=MONDAY + week, client="c", location="brooklyn"))
    apart = [visit(f"s{n}", at=MONDAY + 2 * n * week, client="c") for n in range(3)]
    await hold(store, *apart)  # weeks 0, 2 and 4: none overlaps week 1
    clash = visit("clash", at=MONDAY + week + timedelta(minutes=59), client="c")
    with pytest.raises(Overlap, match="visit-clash overlaps visit visit-between"):
        await hold(store, visit("fine", at=MONDAY + 3 * week, client="c"), clash)


async def test_two_holds_of_one_change_may_not_overlap_each_other(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, _, _ = calendar
    first = visit("first", therapist="t", room=1)
    second = visit("second", at=MONDAY + timedelta(minutes=59), therapist="t", room=2)
    with pytest.raises(Overlap, match="visit-second overlaps visit visit-first"):
        await hold(store, first, second)
    assert await held_ids(store) == []


async def test_a_move_leaves_its_old_place_and_a_cancel_frees_it(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, client, keys = calendar
    moving = visit("moving", therapist="t", room=1)
    await hold(store, moving)
    # half an hour later overlaps where it was: only its own old place, so it fits
    moved = moving.model_copy(update={"start": MONDAY + HOUR / 2, "end": MONDAY + HOUR * 1.5})
    await hold(store, moved)
    found = await store.visit(moving.visit_id)
    assert found is not None and found == (moved, "booked")
    assert await client.zscore(keys("busy", "therapist", "t"), moving.visit_id) == (
        moved.start.timestamp()
    )
    # its old first half is free again for the same therapist and room
    await hold(store, visit("before", at=MONDAY - HOUR / 2, therapist="t", room=1))

    await store.apply(CalendarChange(free={moving.visit_id: "cancelled"}), now=MONDAY)
    assert await held_ids(store) == ["visit-before"]
    assert await client.zscore(keys("busy", "room", "beaverton", "1"), moving.visit_id) is None
    found = await store.visit(moving.visit_id)
    assert found is not None and found[1] == "cancelled"
    await hold(store, visit("after", at=MONDAY + HOUR, therapist="t", room=1))


async def test_the_outbox_keeps_a_changes_order_and_a_retry_its_first_place(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, client, keys = calendar
    before = epoch_ms()
    names = ["zulu", "alpha", "mike"]
    change = CalendarChange(outbox={name: f"entry {name}" for name in names})
    await store.apply(change, now=MONDAY + timedelta(days=300))  # a simulated clock ahead
    ranked = await client.zrange(keys("outbox-due"), 0, -1, withscores=True)
    queued = cast("list[tuple[str, float]]", ranked)
    assert [event_id for event_id, _ in queued] == names
    assert all(before <= score <= epoch_ms() + len(names) for _, score in queued)
    await store.apply(CalendarChange(outbox={"alpha": "entry alpha"}), now=MONDAY)
    assert await client.zrange(keys("outbox-due"), 0, -1, withscores=True) == queued
    assert await client.hget(keys("outbox"), "mike") == "entry mike"


async def test_the_lock_is_let_go_only_by_its_holder_whatever_the_outcome(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, client, _ = calendar
    lock = store.location_lock_key("beaverton")
    await client.set(lock, "mine")
    await store.apply(CalendarChange(hold=[visit("a")]), now=MONDAY, unlock=(lock, "mine"))
    assert await client.get(lock) is None

    await client.set(lock, "someone else")
    await store.apply(CalendarChange(hold=[visit("b", room=2)]), now=MONDAY, unlock=(lock, "mine"))
    assert await client.get(lock) == "someone else"

    await client.set(lock, "mine")
    with pytest.raises(Overlap):
        clash = visit("c", therapist="t-a", room=3)
        await store.apply(CalendarChange(hold=[clash]), now=MONDAY, unlock=(lock, "mine"))
    assert await client.get(lock) is None


async def test_a_change_larger_than_one_commands_arguments_is_written_whole(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, client, keys = calendar
    many = [visit(f"n{n}", room=n + 1) for n in range(700)]
    records = {f"r{n}": str(n) for n in range(700)}
    await store.apply(CalendarChange(hold=many, records=records), now=MONDAY)
    assert len(await held_ids(store)) == 700
    assert await client.hlen(keys("visit-status")) == 700
    assert await store.record("r699") == "699"
    assert await client.zcard(keys("location-visits", "beaverton")) == 700


async def test_the_turnover_keeps_therapist_and_room_free_after_a_visit(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, _, _ = calendar
    await hold(store, visit("a", therapist="t-1", room=1))
    gap = {"beaverton": timedelta(minutes=15)}
    now = MONDAY - timedelta(days=7)
    # the same therapist 10 minutes after the end, in another room: inside the turnover
    too_soon = visit("b", at=MONDAY + HOUR + timedelta(minutes=10), therapist="t-1", room=2)
    with pytest.raises(Overlap):
        await store.apply(CalendarChange(hold=[too_soon], turnover=gap), now=now)
    # the same room, another therapist: the room needs its turnover too
    same_room = visit("c", at=MONDAY + HOUR + timedelta(minutes=10), therapist="t-2", room=1)
    with pytest.raises(Overlap):
        await store.apply(CalendarChange(hold=[same_room], turnover=gap), now=now)
    # the same client right after is fine (the turnover is the clinic's, not theirs)...
    client_next = visit("d", at=MONDAY + HOUR, therapist="t-3", room=2, client="client-a")
    # ...and the therapist once the turnover has run
    later = visit("e", at=MONDAY + HOUR + timedelta(minutes=15), therapist="t-1", room=3)
    await store.apply(CalendarChange(hold=[client_next, later], turnover=gap), now=now)
    # two holds of one change keep it between them as well
    pair = [
        visit("f", at=MONDAY + 5 * HOUR, therapist="t-4", room=2),
        visit("g", at=MONDAY + 6 * HOUR + timedelta(minutes=5), therapist="t-4", room=3),
    ]
    with pytest.raises(Overlap):
        await store.apply(CalendarChange(hold=pair, turnover=gap), now=now)


async def test_a_change_computed_from_an_older_directory_writes_nothing(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, client, keys = calendar
    now = MONDAY - timedelta(days=7)
    first = Directory(version=1)
    await store.apply(CalendarChange(directory=0, directory_document=first), now=now)
    assert await client.get(keys("directory-version")) == "1"
    stale = CalendarChange(hold=[visit("h")], directory=0)
    with pytest.raises(Overlap, match="directory"):
        await store.apply(stale, now=now)
    assert await store.visit("visit-h") is None
    await store.apply(CalendarChange(hold=[visit("h")], directory=1), now=now)
    assert await store.visit("visit-h") is not None


async def test_the_daily_maximum_holds_in_the_script(
    calendar: tuple[CalendarStore, aioredis.Redis, Keys],
) -> None:
    store, _, _ = calendar
    now = MONDAY - timedelta(days=7)
    caps = {"beaverton": (2, ZoneInfo("America/Los_Angeles"))}
    first = visit("m1", therapist="t-cap", room=1)
    second = visit("m2", at=MONDAY + 2 * HOUR, therapist="t-cap", room=1)
    await store.apply(CalendarChange(hold=[first, second], caps=caps), now=now)
    # a third that day is refused, even computed by an instance that did not see the two
    third = visit("m3", at=MONDAY + 4 * HOUR, therapist="t-cap", room=2)
    with pytest.raises(Overlap, match="daily maximum"):
        await store.apply(CalendarChange(hold=[third], caps=caps), now=now)
    # moving one of the two within the day keeps the count; the next day is another day
    moved = second.model_copy(update={"start": MONDAY + 5 * HOUR, "end": MONDAY + 6 * HOUR})
    next_day = third.model_copy(
        update={"start": MONDAY + timedelta(days=1), "end": MONDAY + timedelta(days=1) + HOUR}
    )
    await store.apply(CalendarChange(hold=[moved, next_day], caps=caps), now=now)
    # freeing one leaves room for another
    await store.apply(
        CalendarChange(hold=[third], free={first.visit_id: "cancelled"}, caps=caps), now=now
    )
    # two new ones in one change count each other
    pair = [
        visit("m4", at=MONDAY + timedelta(days=2), therapist="t-cap"),
        visit("m5", at=MONDAY + timedelta(days=2, hours=2), therapist="t-cap"),
        visit("m6", at=MONDAY + timedelta(days=2, hours=4), therapist="t-cap"),
    ]
    with pytest.raises(Overlap, match="daily maximum"):
        await store.apply(CalendarChange(hold=pair, caps=caps), now=now)
