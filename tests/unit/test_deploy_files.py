"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine), so
their agreement with the code is checked by reading them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from shared.settings import (
    CommonSettings,
    IntakeSettings,
    KafkaTuning,
    NotifierSettings,
    PlannerSettings,
    SchedulerSettings,
)
from shared.topics import PUBLIC_TOPICS
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
SETTINGS = {
    "intake": IntakeSettings,
    "planner": PlannerSettings,
    "scheduler": SchedulerSettings,
    "notifier": NotifierSettings,
}
IMAGE_ONLY = {"SERVICE_PORT"}  # read by the Dockerfile's healthcheck, not by the code


def environment_names(settings: type[CommonSettings]) -> set[str]:
    names = {str(f.validation_alias) for f in settings.model_fields.values() if f.validation_alias}
    names |= {f"KAFKA_{name.upper()}" for name in KafkaTuning.model_fields}
    return names


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_every_service_environment_variable_is_a_setting(service: str) -> None:
    env = COMPOSE["services"][service]["environment"]
    unknown = set(env) - environment_names(SETTINGS[service]) - IMAGE_ONLY
    assert not unknown, f"{service}: {unknown} are not settings"
    settings = SETTINGS[service].model_validate(
        {k: v for k, v in env.items() if k not in IMAGE_ONLY}
    )
    assert settings.kafka_bootstrap_servers == "kafka:9092"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_ports_healthcheck_and_command_agree(service: str) -> None:
    spec = COMPOSE["services"][service]
    env = spec["environment"]
    port = env[f"{service.upper()}_PORT"]
    assert env["SERVICE_PORT"] == port
    assert spec["ports"] == [f"{port}:{port}"]
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    assert (ROOT / "services" / service / "__main__.py").exists()
    assert SETTINGS[service].model_fields["port"].default == int(port)


def test_topic_init_creates_the_registry_topics() -> None:
    script = COMPOSE["services"]["topic-init"]["command"][0]
    created = {}
    for line in script.splitlines():
        words = shlex.split(line)
        if words[:1] == ["create"]:
            created[words[1]] = (int(words[2]), int(words[3]))
    assert created == {
        spec.name: (spec.partitions, spec.retention_days * 86_400_000) for spec in PUBLIC_TOPICS
    }


def test_kafka_runs_in_kraft_mode_and_redis_keeps_an_append_only_file() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "--appendonly" in COMPOSE["services"]["redis"]["command"]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) >= 2
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in DOCKERFILE and "/healthz" in DOCKERFILE
    for copied in re.findall(r"^COPY (?:--\S+ )*(\S+) ", DOCKERFILE, re.M):
        if not copied.startswith("/"):
            assert (ROOT / copied).exists(), copied


def test_compose_mounts_a_chain_config_that_exists() -> None:
    for service in SETTINGS:
        for volume in COMPOSE["services"][service]["volumes"]:
            host, container, *_ = volume.split(":")
            assert (ROOT / host).exists()
            assert (
                COMPOSE["services"][service]["environment"]["CLINICFLOW_CHAIN_CONFIG"] == container
            )
    assert Path(ROOT / "deploy" / "dev" / "chain.yaml").exists()
