"""deploy/k8s cannot be applied here (no cluster), so its agreement with the code
is checked by reading it: settings, ports, probes, Services, autoscaling, the
topic-init Job and the NetworkPolicies that keep all but the services out of Kafka
and Redis."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import shared.topics
from shared.chain import parse_chain_config
from shared.settings import DEFAULT_CHAIN_CONFIG, DashboardSettings, NotifierSettings
from shared.topics import PUBLIC_TOPICS, TopicSpec
from tests.conftest import ROOT
from tests.unit.test_deploy_files import (
    POLLED,
    SETTINGS,
    default_port,
    image_user_id,
    registry_topics,
    topic_script_creates,
    validate_environment,
)

K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = yaml.safe_load((K8S / "kustomization.yaml").read_text())
DOCUMENTS: list[dict[str, Any]] = [
    document
    for resource in KUSTOMIZATION["resources"]
    for document in yaml.safe_load_all((K8S / resource).read_text())
    if document is not None
]
NAMESPACE = KUSTOMIZATION["namespace"]


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in DOCUMENTS if d["kind"] == kind}


DEPLOYMENTS = of_kind("Deployment")
SERVICES = of_kind("Service")
CONFIG_MAPS = of_kind("ConfigMap")
SECRETS = of_kind("Secret")
HPAS = of_kind("HorizontalPodAutoscaler")
JOBS = of_kind("Job")


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    spec: dict[str, Any] = only
    return spec


def pod_specs() -> dict[str, dict[str, Any]]:
    workloads = {**DEPLOYMENTS, **JOBS}
    return {name: w["spec"]["template"]["spec"] for name, w in workloads.items()}


def container_port(service: str) -> int:
    [port] = container(DEPLOYMENTS[service])["ports"]
    assert port["name"] == "http"
    return int(port["containerPort"])


def resolve_port(port: int | str, service: str) -> int:
    return container_port(service) if port == "http" else int(port)


def selects(service: dict[str, Any], deployment: dict[str, Any]) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in service["spec"]["selector"].items())


# realistic values for what the Secret holds: long, random, no placeholders
SECRET_VALUES = {
    key: secrets.token_urlsafe(24) for secret in SECRETS.values() for key in secret["stringData"]
}


def environment(service: str, secret_values: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a Deployment's container gets: envFrom, then env."""
    spec = container(DEPLOYMENTS[service])
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(CONFIG_MAPS[source["configMapRef"]["name"]]["data"])
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]
        if "secretKeyRef" in ref:
            secret = SECRETS[ref["secretKeyRef"]["name"]]["stringData"]
            key = ref["secretKeyRef"]["key"]
            assert key in secret, f"{service}: the Secret has no {key}"
            env[item["name"]] = (secret_values or secret)[key]
        else:
            key_ref = ref["configMapKeyRef"]
            env[item["name"]] = CONFIG_MAPS[key_ref["name"]]["data"][key_ref["key"]]
    return env


# ---------------------------------------------------------------- the files


def test_the_kustomization_lists_every_manifest_and_one_namespace() -> None:
    listed = set(KUSTOMIZATION["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert list(of_kind("Namespace")) == [NAMESPACE]
    for document in DOCUMENTS:
        assert document["metadata"].get("namespace", NAMESPACE) == NAMESPACE
    [image] = KUSTOMIZATION["images"]
    for deployment in DEPLOYMENTS.values():
        assert container(deployment)["image"].split(":")[0] == image["name"]


def test_there_is_a_deployment_per_service() -> None:
    assert set(DEPLOYMENTS) == set(SETTINGS)


# ---------------------------------------------------------------- each service


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_command_port_probes_and_scrape_annotations_agree(service: str) -> None:
    deployment = DEPLOYMENTS[service]
    spec = container(deployment)
    assert spec["command"] == ["python", "-m", f"services.{service}"]
    assert (ROOT / "services" / service / "__main__.py").exists()
    port = container_port(service)
    assert port == default_port(service)
    assert environment(service)[f"{service.upper()}_PORT"] == str(port)
    for probe, path in (
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ):
        get = spec[probe]["httpGet"]
        assert (get["path"], resolve_port(get["port"], service)) == (path, port), probe
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_resources_are_requested_and_limited(service: str) -> None:
    resources = container(DEPLOYMENTS[service])["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound]), bound


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_the_pod_runs_as_the_image_user_on_a_read_only_root(service: str) -> None:
    pod = DEPLOYMENTS[service]["spec"]["template"]["spec"]
    spec = container(DEPLOYMENTS[service])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_user_id() == 10001
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    # where the process writes - its working directory, /tmp - is an emptyDir
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"] for m in spec["volumeMounts"] if m["name"] in empty_dirs}
    assert {spec["workingDir"], "/tmp"} <= writable
    if service == "notifier":
        outbox = Path(environment(service)["NOTIFIER_OUTBOX_PATH"])
        assert any(outbox.is_relative_to(path) for path in writable), outbox


def test_every_pod_meets_the_restricted_pod_security_standard() -> None:
    labels = of_kind("Namespace")[NAMESPACE]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for name, pod in pod_specs().items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        for spec in pod["containers"]:
            context = spec["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
        assert pod["automountServiceAccountToken"] is False, name


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_the_environment_is_settings_that_validate_in_production(service: str) -> None:
    settings = validate_environment(service, environment(service, SECRET_VALUES))
    assert settings.env == "production"
    assert settings.chain_config != DEFAULT_CHAIN_CONFIG
    assert settings.link_secret.get_secret_value() == SECRET_VALUES["CLINICFLOW_LINK_SECRET"]
    assert (
        settings.kafka_bootstrap_servers
        == CONFIG_MAPS["clinicflow-env"]["data"]["KAFKA_BOOTSTRAP_SERVERS"]
    )
    if isinstance(settings, NotifierSettings):
        assert settings.email_configured and settings.sms_configured
        assert settings.smtp_security != "none"


def test_the_secret_holds_placeholders_and_every_secret_setting_reads_it() -> None:
    [secret] = SECRETS.values()
    assert set(secret["stringData"]) == {
        "CLINICFLOW_LINK_SECRET",
        "NOTIFIER_SMTP_PASSWORD",
        "NOTIFIER_SMS_AUTH_TOKEN",
        "NOTIFIER_WEBHOOK_SECRET",
    }
    assert all(value.startswith("change-me-") for value in secret["stringData"].values())
    # a secret never sits in a ConfigMap
    for config_map in CONFIG_MAPS.values():
        assert not set(config_map["data"]) & set(secret["stringData"])
    for service in SETTINGS:
        refs = {
            item["name"]
            for item in container(DEPLOYMENTS[service]).get("env", [])
            if "secretKeyRef" in item.get("valueFrom", {})
        }
        wanted = set(secret["stringData"]) & {
            str(f.validation_alias) for f in SETTINGS[service].model_fields.values()
        }
        assert refs == wanted, service


def chain_document(service: str) -> str:
    """The chain configuration file a service's container finds at CLINICFLOW_CHAIN_CONFIG."""
    pod = DEPLOYMENTS[service]["spec"]["template"]["spec"]
    path = Path(environment(service)["CLINICFLOW_CHAIN_CONFIG"])
    mounts = container(DEPLOYMENTS[service])["volumeMounts"]
    [mount] = [m for m in mounts if m["mountPath"] == str(path.parent)]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    data: dict[str, str] = CONFIG_MAPS[volume["configMap"]["name"]]["data"]
    assert path.name in data, service
    return data[path.name]


def test_the_chain_config_is_mounted_where_the_settings_look_and_has_no_demo_keys() -> None:
    [document] = {chain_document(service) for service in SETTINGS}
    chain = parse_chain_config(yaml.safe_load(document), source=K8S / "config.yaml")
    keys = [key.key for key in chain.api_keys]
    assert keys and not [k for k in keys if k.startswith("demo-")]
    # placeholders an operator cannot miss
    assert all(key.startswith("change-me-") for key in keys)


# ---------------------------------------------------------------- Services


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_a_cluster_ip_service_routes_to_the_container_port(service: str) -> None:
    svc = SERVICES[service]
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert selects(svc, DEPLOYMENTS[service])
    [port] = svc["spec"]["ports"]
    assert port["port"] == default_port(service)
    assert resolve_port(port["targetPort"], service) == container_port(service)


def test_the_dashboard_resolves_every_pod_through_headless_services() -> None:
    settings = DashboardSettings.model_validate(environment("dashboard", SECRET_VALUES))
    assert isinstance(settings, DashboardSettings)
    urls = settings.service_urls()
    assert set(urls) == set(POLLED)
    for service, url in urls.items():
        host, port = re.fullmatch(r"http://([\w-]+):(\d+)", url).groups()  # type: ignore[union-attr]
        headless = SERVICES[host]
        assert headless["spec"]["clusterIP"] == "None", host
        assert headless["spec"]["publishNotReadyAddresses"] is True, host
        assert selects(headless, DEPLOYMENTS[service]), host
        [svc_port] = headless["spec"]["ports"]
        assert int(port) == svc_port["port"] == container_port(service)
        assert resolve_port(svc_port["targetPort"], service) == container_port(service)


# ---------------------------------------------------------------- autoscaling


def consumed_topics(service: str) -> list[TopicSpec]:
    """The topics a service's consumer group reads (``consumes=[...]`` in its app)."""
    app = ROOT / "services" / service / "app.py"
    found = re.search(r"consumes=\[([^\]]*)\]", app.read_text()) if app.exists() else None
    if found is None:
        return []
    by_name = {n: v for n, v in vars(shared.topics).items() if isinstance(v, TopicSpec)}
    return [by_name[name.strip()] for name in found.group(1).split(",") if name.strip()]


def test_consumers_are_known() -> None:
    assert {s for s in SETTINGS if consumed_topics(s)} == {"planner", "scheduler", "notifier"}
    assert all(spec in PUBLIC_TOPICS for s in SETTINGS for spec in consumed_topics(s))


@pytest.mark.parametrize("service", sorted(SETTINGS))
def test_an_autoscaler_targets_each_deployment_within_its_partitions(service: str) -> None:
    hpa = HPAS[service]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", service)
    assert target["apiVersion"] == DEPLOYMENTS[service]["apiVersion"]
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    topics = consumed_topics(service)
    if topics:
        # a consumer group has no use for more instances than a topic has partitions
        assert hpa["spec"]["maxReplicas"] <= min(spec.partitions for spec in topics)
    # the autoscaler owns the replica count; a fixed one would be reset by every apply
    assert "replicas" not in DEPLOYMENTS[service]["spec"]
    # CPU utilisation needs a CPU request to be measured against
    metrics = {m["resource"]["name"] for m in hpa["spec"]["metrics"]}
    assert metrics <= set(container(DEPLOYMENTS[service])["resources"]["requests"])


def test_every_autoscaler_targets_a_deployment_that_exists() -> None:
    assert {h["spec"]["scaleTargetRef"]["name"] for h in HPAS.values()} <= set(DEPLOYMENTS)


# ---------------------------------------------------------------- topic-init


def test_the_topic_init_job_creates_the_registry_topics() -> None:
    job = JOBS["topic-init"]
    [spec] = job["spec"]["template"]["spec"]["containers"]
    assert spec["image"].startswith("apache/kafka:")
    assert spec["command"] == ["/bin/bash", "-c"]
    assert topic_script_creates(spec["args"][0]) == registry_topics()
    env = {item["name"]: item for item in spec["env"]}
    ref = env["KAFKA_BOOTSTRAP_SERVERS"]["valueFrom"]["configMapKeyRef"]
    assert ref == {"name": "clinicflow-env", "key": "KAFKA_BOOTSTRAP_SERVERS"}
    assert '--bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS"' in spec["args"][0]
    assert '--replication-factor "$REPLICATION_FACTOR"' in spec["args"][0]
    assert int(env["REPLICATION_FACTOR"]["value"]) >= 1
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


# ---------------------------------------------------------------- NetworkPolicies

DATASTORES = K8S / "datastores"
DATASTORE_KUSTOMIZATION = yaml.safe_load((DATASTORES / "kustomization.yaml").read_text())
DATASTORE_DOCUMENTS: list[dict[str, Any]] = [
    document
    for resource in DATASTORE_KUSTOMIZATION["resources"]
    for document in yaml.safe_load_all((DATASTORES / resource).read_text())
    if document is not None
]
NETWORK_POLICIES = [d for d in DOCUMENTS if d["kind"] == "NetworkPolicy"]
DATASTORE_POLICIES = [d for d in DATASTORE_DOCUMENTS if d["kind"] == "NetworkPolicy"]
# how the common charts and the Strimzi operator label a Kafka broker and a Redis node
DATASTORE_LABELS = {
    "kafka": {"app.kubernetes.io/name": "kafka", "strimzi.io/kind": "Kafka"},
    "redis": {"app.kubernetes.io/name": "redis", "app.kubernetes.io/component": "master"},
}
CLIENTS = {"kafka": set(DEPLOYMENTS) | {"topic-init"}, "redis": set(DEPLOYMENTS)}


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]

    def namespace_labels(self) -> dict[str, str]:
        """Its namespace's labels: Kubernetes adds kubernetes.io/metadata.name to each."""
        own = (
            of_kind("Namespace")[NAMESPACE]["metadata"]["labels"]
            if self.namespace == NAMESPACE
            else {}
        )
        return {**own, "kubernetes.io/metadata.name": self.namespace}


def workload_pods() -> list[Pod]:
    workloads = {**DEPLOYMENTS, **JOBS}
    return [
        Pod(name, NAMESPACE, w["spec"]["template"]["metadata"]["labels"])
        for name, w in workloads.items()
    ]


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against labels."""
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        assert operator in ("In", "NotIn", "Exists", "DoesNotExist"), operator
        assert bool(values) == (operator in ("In", "NotIn")), expression
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def peer_admits(peer: dict[str, Any], policy_namespace: str, pod: Pod) -> bool:
    """NetworkPolicy peer semantics: a podSelector alone means the policy's own
    namespace; with a namespaceSelector, both must match."""
    assert set(peer) <= {"podSelector", "namespaceSelector"}, peer  # no ipBlock here
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], pod.namespace_labels()):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector", {}), pod.labels)


def admitted(policy: dict[str, Any], pod: Pod, port: int) -> bool:
    spec = policy["spec"]
    for rule in spec["ingress"]:
        assert set(rule) <= {"from", "ports"}, rule
        ports = rule.get("ports")
        if ports is not None and not any(
            p.get("protocol", "TCP") == "TCP" and p["port"] == port for p in ports
        ):
            continue
        if any(peer_admits(peer, policy["metadata"]["namespace"], pod) for peer in rule["from"]):
            return True
    return False


def address(setting: str) -> tuple[str, int]:
    """The host and port of config.yaml's Kafka or Redis address."""
    value = CONFIG_MAPS["clinicflow-env"]["data"][setting]
    host, port = re.fullmatch(r"(?:redis://)?(?:[^@/]*@)?([\w.-]+):(\d+)(?:/\d+)?", value).groups()  # type: ignore[union-attr]
    return host, int(port)


DATASTORE_ADDRESSES = {
    "kafka": address("KAFKA_BOOTSTRAP_SERVERS"),
    "redis": address("REDIS_URL"),
}


def guarding(policies: list[dict[str, Any]], store: str) -> dict[str, Any]:
    [policy] = [
        p for p in policies if selector_matches(p["spec"]["podSelector"], DATASTORE_LABELS[store])
    ]
    return policy


def test_the_policies_are_well_formed_ingress_policies() -> None:
    assert [p["metadata"]["name"] for p in NETWORK_POLICIES] == ["kafka-clients", "redis-clients"]
    assert DATASTORE_KUSTOMIZATION["resources"] == [
        p.name for p in sorted(DATASTORES.glob("*.yaml")) if p.name != "kustomization.yaml"
    ]
    assert "namespace" not in DATASTORE_KUSTOMIZATION  # each policy names its own
    for policy in NETWORK_POLICIES + DATASTORE_POLICIES:
        assert policy["apiVersion"] == "networking.k8s.io/v1"
        assert set(policy["spec"]) == {"podSelector", "policyTypes", "ingress"}
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        for rule in policy["spec"]["ingress"]:
            assert rule["from"], policy["metadata"]
            for port in rule.get("ports", []):
                assert set(port) <= {"protocol", "port"} and isinstance(port["port"], int)


@pytest.mark.parametrize("store", sorted(DATASTORE_LABELS))
@pytest.mark.parametrize("where", ["clinicflow namespace", "own namespace"])
def test_only_the_services_reach_kafka_and_redis(store: str, where: str) -> None:
    host, port = DATASTORE_ADDRESSES[store]
    if where == "clinicflow namespace":
        policy, store_namespace = guarding(NETWORK_POLICIES, store), NAMESPACE
    else:
        # in a namespace of its own: the one config.yaml's address names
        store_namespace = host.split(".")[1]
        policy = guarding(DATASTORE_POLICIES, store)
        assert policy["metadata"]["namespace"] == store_namespace
    # the policy guards the store's pods and none of ours
    assert not any(
        selector_matches(policy["spec"]["podSelector"], pod.labels) for pod in workload_pods()
    )
    clients = {pod.name for pod in workload_pods() if admitted(policy, pod, port)}
    assert clients == CLIENTS[store]
    others = [
        Pod("debug", NAMESPACE, {"app.kubernetes.io/name": "debug"}),
        Pod("impostor", "default", DEPLOYMENTS["intake"]["spec"]["template"]["metadata"]["labels"]),
        Pod("job", NAMESPACE, {"app.kubernetes.io/name": "topic-init"}),  # not part-of clinicflow
    ]
    assert not [pod.name for pod in others if admitted(policy, pod, port)]
    # the store's own pods still reach each other, on any port
    peer = Pod(f"{store}-1", store_namespace, DATASTORE_LABELS[store])
    assert admitted(policy, peer, port) and admitted(policy, peer, 9093)
    # a client is let in on the client port only
    intake = next(pod for pod in workload_pods() if pod.name == "intake")
    assert not admitted(policy, intake, port + 1)


def test_the_label_selector_reader() -> None:
    labels = {"a": "1", "b": "2"}
    assert selector_matches({}, labels)
    assert selector_matches({"matchLabels": {"a": "1"}}, labels)
    assert not selector_matches({"matchLabels": {"a": "2"}}, labels)
    assert selector_matches(
        {"matchExpressions": [{"key": "b", "operator": "In", "values": ["2", "3"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "c", "operator": "In", "values": ["1"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, labels
    )
    assert selector_matches({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, labels)
    assert not selector_matches(
        {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, labels
    )
