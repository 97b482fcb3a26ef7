"""The envelope and codec: what goes on the wire and what comes back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.codec import DecodeError, decode_data, decode_envelope, encode, peek_type, wrap
from shared.envelope import Trace, derived_id
from shared.events import EVENT_MODELS, PlanDeclined
from shared.events.plans import RationaleItem, Referral
from shared.topics import PUBLIC_TOPICS, topic_for
from tests.support import CLOUDEVENTS_ATTRIBUTES

NOW = datetime(2027, 3, 8, 16, 0, tzinfo=UTC)


def declined() -> PlanDeclined:
    return PlanDeclined(
        client_id="c-1",
        intake_id="i-1",
        location_id="beaverton",
        outcome="refer",
        reasons=[RationaleItem(rule="DOMAIN.md 2: deep vein thrombosis", detail="dvt")],
        referral=Referral(recommended=True, to="physician", detail="see a doctor"),
        declined_at=NOW,
    )


def test_round_trip_keeps_every_cloudevents_attribute() -> None:
    trace = Trace(chainid="chain", correlationid="i-1", causationid="e-0", locationid="beaverton")
    envelope = wrap(
        declined(), event_id="e-1", service="planner", subject="c-1", trace=trace, time=NOW
    )
    wire = json.loads(encode(envelope))
    for attribute in (*CLOUDEVENTS_ATTRIBUTES, "causationid", "data"):
        assert attribute in wire, attribute
    assert wire["specversion"] == "1.0"
    assert wire["source"] == "/clinicflow/planner"
    assert wire["dataschema"] == "urn:clinicflow:schema:plan.declined:v1"
    back = decode_envelope(encode(envelope))
    assert back == envelope
    assert decode_data(back) == declined()


def test_unknown_extension_attributes_from_newer_producers_are_tolerated() -> None:
    trace = Trace(chainid="chain", correlationid="i-1")
    envelope = wrap(
        declined(), event_id="e-1", service="planner", subject="c-1", trace=trace, time=NOW
    )
    wire = json.loads(encode(envelope))
    wire["traceparent"] = "00-abc"
    wire["data"]["added_in_v1_1"] = True
    assert decode_data(decode_envelope(json.dumps(wire).encode())) == declined()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b'{"hello": "world"}', "not a CloudEvents envelope"),
        (None, "tombstone"),
    ],
)
def test_undecodable_records_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_envelope(raw)


def test_invalid_data_names_the_field_path() -> None:
    trace = Trace(chainid="chain", correlationid="i-1")
    envelope = wrap(
        declined(), event_id="e-1", service="planner", subject="c-1", trace=trace, time=NOW
    )
    broken = envelope.model_copy(update={"data": {**envelope.data, "outcome": "maybe"}})
    with pytest.raises(DecodeError, match="outcome"):
        decode_data(broken)


def test_unknown_event_type_is_a_decode_error() -> None:
    trace = Trace(chainid="chain", correlationid="i-1")
    envelope = wrap(
        declined(), event_id="e-1", service="planner", subject="c-1", trace=trace, time=NOW
    )
    with pytest.raises(DecodeError, match="unknown event type"):
        decode_data(envelope.model_copy(update={"type": "plan.exploded"}))


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derived_id("visit", "p-1", 1) == derived_id("visit", "p-1", 1)
    assert derived_id("visit", "p-1", 1) != derived_id("visit", "p-1", 2)
    assert derived_id("a", "bc") != derived_id("ab", "c")


def test_every_event_type_has_exactly_one_public_topic() -> None:
    for event_type in EVENT_MODELS:
        owners = [spec.name for spec in PUBLIC_TOPICS if event_type in spec.event_types]
        assert len(owners) == 1, (event_type, owners)
        assert topic_for(event_type).name == owners[0]
    # keyed by client, so one client's events stay in order; the directory belongs to
    # the chain, keyed by the chain id
    keys = {spec.name: spec.key for spec in PUBLIC_TOPICS}
    assert keys.pop("clinic.directory") == "chain_id"
    assert set(keys.values()) == {"client_id"}


def test_the_type_is_read_from_the_bytes_of_what_encode_writes() -> None:
    trace = Trace(chainid="chain", correlationid="i-1")
    envelope = wrap(
        declined(), event_id="e-1", service="planner", subject="c-1", trace=trace, time=NOW
    )
    assert peek_type(encode(envelope)) == "plan.declined"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "data", "id", "x"]) | st.text(max_size=5), inner, max_size=3
        )
    ),
    max_leaves=8,
)


@given(
    st.dictionaries(
        st.sampled_from(["specversion", "id", "type", "data", "subject", "type "])
        | st.text(max_size=6),
        _json_values,
        max_size=6,
    ),
    st.booleans(),
)
def test_a_type_read_from_the_bytes_is_the_one_a_full_decode_reads(
    document: dict[str, object], spaced: bool
) -> None:
    """Whatever the key order, nesting or escapes: the peek names the top-level
    ``type`` or nothing at all."""
    raw = json.dumps(document, separators=(", ", ": ") if spaced else (",", ":")).encode()
    peeked = peek_type(raw)
    if peeked is not None:
        assert peeked == document.get("type")
