"""The shared clock and settings that fail closed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from shared.clock import ClockSpecError, SimulatedClock, SystemClock, parse_clock
from shared.runtime import Foundations, StartupError
from shared.settings import CommonSettings, KafkaTuning, NotifierSettings
from tests.conftest import ROOT


def test_system_clock_is_utc_now() -> None:
    clock = parse_clock("system")
    assert isinstance(clock, SystemClock)
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 1


def test_simulated_clock_runs_faster_from_its_anchor() -> None:
    anchor = time.time() - 2.0  # the simulation began two real seconds ago
    clock = parse_clock("sim:2027-03-08T13:00:00Z@3600x", anchor=anchor)
    assert isinstance(clock, SimulatedClock)
    elapsed = clock.now() - datetime(2027, 3, 8, 13, tzinfo=UTC)
    assert timedelta(hours=1.9) < elapsed < timedelta(hours=2.5)
    target = clock.now() + timedelta(hours=36)
    assert 35.9 < clock.real_seconds_until(target) <= 36.0


def test_two_processes_with_one_anchor_agree() -> None:
    anchor = time.time()
    first = parse_clock("sim:2027-03-08T13:00:00Z@1000x", anchor=anchor)
    second = parse_clock("sim:2027-03-08T13:00:00Z@1000x", anchor=anchor)
    assert abs((first.now() - second.now()).total_seconds()) < 5  # 5 ms real at 1000x


@pytest.mark.parametrize(
    "spec",
    ["sim:2027-03-08T13:00:00@10x", "sim:yesterday@10x", "sim:2027-03-08T13:00:00Z@0x", "fast"],
)
def test_bad_clock_specs_are_refused(spec: str) -> None:
    with pytest.raises(ClockSpecError):
        parse_clock(spec)


def test_production_refuses_a_simulated_clock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLINICFLOW_ENV", "production")
    monkeypatch.setenv("CLINICFLOW_CHAIN_CONFIG", str(tmp_path / "chain.yaml"))
    monkeypatch.setenv("CLINICFLOW_CLOCK", "sim:2027-03-08T13:00:00Z@10x")
    with pytest.raises(ValidationError, match="CLINICFLOW_CLOCK"):
        CommonSettings()


def test_production_refuses_the_demo_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINICFLOW_ENV", "production")
    with pytest.raises(ValidationError, match="CLINICFLOW_CHAIN_CONFIG"):
        CommonSettings()


def test_broker_tuning_is_settings_not_literals(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KafkaTuning().enable_idempotence is False  # Tansu has no idempotent producer
    monkeypatch.setenv("KAFKA_ENABLE_IDEMPOTENCE", "true")
    monkeypatch.setenv("KAFKA_FETCH_MAX_WAIT_MS", "500")
    monkeypatch.setenv("KAFKA_REBALANCE_TIMEOUT_S", "60")
    tuned = CommonSettings().kafka
    assert (tuned.enable_idempotence, tuned.fetch_max_wait_ms, tuned.rebalance_timeout_s) == (
        True,
        500,
        60,
    )


def test_production_refuses_the_placeholders_of_the_kubernetes_files(tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "config.yaml").read_text()))
    config = tmp_path / "chain.yaml"
    production = {
        "CLINICFLOW_ENV": "production",
        "CLINICFLOW_CHAIN_CONFIG": config,
        "CLINICFLOW_LINK_SECRET": "a-real-secret-of-enough-length",
    }
    with pytest.raises(ValidationError, match="CLINICFLOW_LINK_SECRET"):
        CommonSettings(**{**production, "CLINICFLOW_LINK_SECRET": "change-me-link-secret-0123"})
    with pytest.raises(ValidationError, match="NOTIFIER_SMS_AUTH_TOKEN"):
        NotifierSettings(**production, NOTIFIER_SMS_AUTH_TOKEN="change-me-sms-token-0123")
    # the sample chain's keys are placeholders too: a service refuses to start on them
    sample = next(
        d for d in documents if d.get("kind") == "ConfigMap" and "chain.yaml" in d.get("data", {})
    )
    config.write_text(sample["data"]["chain.yaml"])
    with pytest.raises(StartupError, match="placeholder API keys"):
        Foundations.load("intake", CommonSettings(**production))
