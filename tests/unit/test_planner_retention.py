"""The pure rules of the planner's finished-course sweep and of the references that
record what an event produced: which history records belong to a course, how it
ended, how long its location keeps it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.planner.outputs import Outputs, Ref, course_of, course_of_record
from services.planner.retirement import causes_of, ended_course, keep_for, shortest_keep
from shared.chain import ChainConfig, load_chain_config
from tests.conftest import DEMO_CHAIN

PLAN = "p-1"
OTHER = "p-2"


def version(plan_id: str) -> dict[str, object]:
    return {"status": "active", "event_type": "plan.revised", "plan": {"plan_id": plan_id}}


def history() -> dict[str, dict[str, object]]:
    """Two courses of one client: p-1 completed, p-2 current; and a declined intake."""
    return {
        "01:p-1:0001": version(PLAN),
        "02:p-1:0002": {"status": "active", "event_type": "plan.revised", "current": PLAN},
        "03:p-1:completed": {
            "status": "completed",
            "event_type": "plan.completed",
            "completion": {
                "plan_id": PLAN,
                "outcome": "referred",
                "completed_at": "2027-03-08T17:00:00Z",
                "location_id": "beaverton",
            },
        },
        "04:p-2:0001": {"status": "active", "event_type": "plan.created", "current": OTHER},
        "05:declined:i-9": {
            "status": "declined",
            "event_type": "plan.declined",
            "decline": {
                "intake_id": "i-9",
                "declined_at": "2027-04-01T09:00:00Z",
                "location_id": "brooklyn",
            },
        },
    }


def test_a_completed_course_is_its_versions_its_stand_in_and_its_completion() -> None:
    ended = ended_course(history(), PLAN)
    assert ended is not None
    assert ended.fields == ("01:p-1:0001", "02:p-1:0002", "03:p-1:completed")
    assert (ended.outcome, ended.location_id) == ("referred", "beaverton")
    assert ended.ended_at == datetime(2027, 3, 8, 17, tzinfo=UTC)


def test_a_declined_intake_is_a_course_by_the_plan_id_it_would_have_had() -> None:
    ended = ended_course(history(), course_of("i-9"))
    assert ended is not None
    assert (ended.fields, ended.outcome, ended.location_id) == (
        ("05:declined:i-9",),
        "declined",
        "brooklyn",
    )


def test_a_course_that_has_not_ended_is_not_one_to_retire() -> None:
    assert ended_course(history(), OTHER) is None
    assert ended_course(history(), "p-unknown") is None


def test_the_outputs_of_a_course_are_found_by_the_course_they_name() -> None:
    outputs = {
        "e-1": Outputs(PLAN, "c-1", (Ref("plan.created", "01:p-1:0001"),)).encode(),
        "e-2": Outputs(PLAN, "", ()).encode(),
        "e-3": Outputs(OTHER, "", ()).encode(),
        "e-4": Outputs("", "", ()).encode(),  # an assessment while no plan was active
    }
    assert causes_of(outputs, PLAN) == ["e-1", "e-2"]
    assert causes_of(outputs, OTHER) == ["e-3"]


refs = st.lists(
    st.builds(Ref, st.sampled_from(["plan.created", "plan.completed"]), st.text(min_size=1)),
    max_size=3,
)


@given(st.text(alphabet="0123456789abcdef-", max_size=36), st.text(max_size=12), refs)
def test_outputs_read_back_as_written(course: str, client: str, found: list[Ref]) -> None:
    outputs = Outputs(course, client if found else "", tuple(found))
    assert Outputs.decode(outputs.encode()) == outputs


def test_an_event_that_produced_nothing_costs_its_course_id_alone() -> None:
    assert Outputs(PLAN, "c-1", ()).encode() == PLAN


def test_each_record_names_its_course() -> None:
    assert [course_of_record(r) for r in history().values()] == [
        PLAN,
        PLAN,
        PLAN,
        OTHER,
        course_of("i-9"),
    ]


def test_a_location_may_keep_its_courses_longer_than_the_chain() -> None:
    chain = load_chain_config(DEMO_CHAIN)
    assert keep_for(chain, "beaverton") == timedelta(days=90)
    document = chain.model_dump()
    for location in document["locations"]:
        if location["id"] == "brooklyn":
            location["policy"]["keep_finished_courses"] = timedelta(days=365)
    longer = ChainConfig.model_validate(document)
    assert keep_for(longer, "brooklyn") == timedelta(days=365)
    assert keep_for(longer, "beaverton") == timedelta(days=90)
    assert keep_for(longer, "a-closed-location") == timedelta(days=90)
    assert shortest_keep(longer) == timedelta(days=90)
