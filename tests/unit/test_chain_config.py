"""Chain configuration: the demo chain loads, a bad file names file, field path and reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from shared.chain import ChainConfigError, Policy, PolicyOverride, load_chain_config
from tests.conftest import DEMO_CHAIN


def test_demo_chain_has_two_zones_and_four_therapists_with_different_skills() -> None:
    chain = load_chain_config(DEMO_CHAIN)
    assert len({loc.timezone for loc in chain.locations}) == 2
    assert len(chain.therapists) == 4
    assert len({tuple(t.skills) for t in chain.therapists}) > 1


def test_location_policy_overrides_the_chain_policy() -> None:
    chain = load_chain_config(DEMO_CHAIN)
    assert chain.policy_for("brooklyn").visit_minutes == 50
    assert chain.policy_for("beaverton").visit_minutes == 60
    assert chain.policy_for("beaverton").reminders == [timedelta(days=2), timedelta(hours=2)]


def _write(tmp_path: Path, mutate: object) -> Path:
    document = yaml.safe_load(DEMO_CHAIN.read_text())
    mutate(document)  # type: ignore[operator]
    path = tmp_path / "chain.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("mutate", "where", "why"),
    [
        (
            lambda d: d["locations"][0].update(timezone="Mars/Olympus"),
            "locations.0.timezone",
            "time zone",
        ),
        (
            lambda d: d["locations"][1]["hours"].update(mon=["18:00-09:00"]),
            "locations.1.hours.mon.0",
            "end after",
        ),
        (lambda d: d["policy"].update(min_notice="soon"), "policy.min_notice", "duration"),
        (lambda d: d["therapists"][0].update(locations=["atlantis"]), "(root)", "atlantis"),
        (lambda d: d["api_keys"][2].pop("therapist_id"), "api_keys.2", "therapist_id"),
        (lambda d: d["locations"][0].update(roomz=3), "locations.0.roomz", "Extra inputs"),
    ],
)
def test_bad_file_names_file_field_and_reason(
    tmp_path: Path, mutate: object, where: str, why: str
) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(ChainConfigError) as caught:
        load_chain_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert where in message
    assert why in message


def test_unreadable_and_non_yaml_files_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ChainConfigError, match="cannot read"):
        load_chain_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("chain: [unclosed")
    with pytest.raises(ChainConfigError, match="not valid YAML"):
        load_chain_config(bad)


def test_every_policy_key_can_be_overridden_per_location() -> None:
    assert set(PolicyOverride.model_fields) == set(Policy.model_fields)
