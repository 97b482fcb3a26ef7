"""Service health, consumer lag and waitlist sizes, read from the services themselves.

Every few seconds each service's ``/readyz`` and ``/metrics`` are read, on
every address its host resolves to: behind one DNS name (a compose service
scaled up, a Kubernetes headless Service) each replica is its own instance,
with its own partitions and so its own lag.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lag:
    service: str
    topic: str
    partition: int
    lag: int
    instance: str


@dataclass(frozen=True)
class Instance:
    service: str
    instance: str  # host:port
    ready: bool
    checks: dict[str, bool]
    error: str | None = None


@dataclass
class Probed:
    """What the last round found (a fresh object each round)."""

    at: datetime | None = None
    instances: list[Instance] = field(default_factory=list)
    lag: list[Lag] = field(default_factory=list)
    waitlist: dict[str, int] = field(default_factory=dict)


def read_metrics(text: str, instance: str) -> tuple[list[Lag], dict[str, int]]:
    """Consumer lag per partition and waitlist size per location from one exposition."""
    lags: list[Lag] = []
    waitlist: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "clinicflow_consumer_lag":
            for sample in family.samples:
                labels = sample.labels
                lags.append(
                    Lag(
                        service=labels.get("service", "?"),
                        topic=labels.get("topic", "?"),
                        partition=int(labels.get("partition", "-1")),
                        lag=int(sample.value),
                        instance=instance,
                    )
                )
        elif family.name == "clinicflow_waitlist_size":
            for sample in family.samples:
                waitlist[sample.labels.get("location", "?")] = int(sample.value)
    return lags, waitlist


async def instances_of(url: str) -> list[str]:
    """Each base URL the service's host stands for (one per resolved address)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host == "localhost" or _is_address(host):
        return [url]
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port, type=socket.SOCK_STREAM
        )
    except OSError:
        return [url]  # unresolvable now: the probe reports it as down
    addresses = sorted({str(info[4][0]) for info in found})
    return [_with_host(parts, address) for address in addresses] or [url]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _with_host(parts: SplitResult, address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return str(urlunsplit(parts._replace(netloc=netloc)))


async def probe_once(services: dict[str, str], client: httpx.AsyncClient, clock: Clock) -> Probed:
    probed = Probed(at=clock.now())
    targets = [(name, url) for name, base in services.items() for url in await instances_of(base)]
    results = await asyncio.gather(*(_probe(client, name, url) for name, url in targets))
    for instance, lags, waitlist in results:
        probed.instances.append(instance)
        probed.lag += lags
        for location, size in waitlist.items():
            probed.waitlist[location] = max(size, probed.waitlist.get(location, 0))
    return probed


async def _probe(
    client: httpx.AsyncClient, service: str, url: str
) -> tuple[Instance, list[Lag], dict[str, int]]:
    name = urlsplit(url).netloc
    try:
        ready = await client.get(f"{url}/readyz")
        body = ready.json()
        instance = Instance(
            service=service,
            instance=name,
            ready=ready.status_code == 200,
            checks={str(k): bool(v) for k, v in body.get("checks", {}).items()},
        )
        metrics = await client.get(f"{url}/metrics")
        lags, waitlist = read_metrics(metrics.text, name)
    except (httpx.HTTPError, ValueError) as exc:
        return Instance(service, name, False, {}, error=type(exc).__name__), [], {}
    return instance, lags, waitlist


class Prober:
    """Reads the services every ``every_s`` seconds; ``latest`` is the last round."""

    def __init__(self, services: dict[str, str], every_s: float) -> None:
        self.services = services
        self.every_s = every_s
        self.latest = Probed()

    async def run(self, clock: Clock) -> None:
        async with httpx.AsyncClient(timeout=min(self.every_s, 3.0)) as client:
            while True:
                try:
                    self.latest = await probe_once(self.services, client, clock)
                except Exception as exc:
                    log.warning("service probe round failed: %r", exc)
                await asyncio.sleep(self.every_s)
