"""Session fixtures: one broker and one Redis for the whole run, through the same
launcher ``clinicflow up`` uses, and a Redis namespace of the run's own."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings
from playwright.async_api import Browser, async_playwright

from shared.infra import Infra, local_infra

# a clean checkout builds hypothesis' unicode tables on first use, which its health
# check reads as slow input generation; speed is not what these properties test
settings.register_profile("clinicflow", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("clinicflow")

ROOT = Path(__file__).resolve().parent.parent
DEMO_CHAIN = ROOT / "deploy" / "dev" / "chain.yaml"
PLAN_CHANGE_NOTICES = ("booking_confirmation", "visit_change", "plan_update", "offer_accepted")


def demo_chain_with(folder: Path, name: str, **policy: object) -> Path:
    """The demo chain with ``policy`` keys replaced, written to ``folder``."""
    config = yaml.safe_load(DEMO_CHAIN.read_text("utf-8"))
    config.setdefault("policy", {}).update(policy)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path


def reminders_only_chain(folder: Path) -> Path:
    """The demo chain with the plan-change notices switched off by policy: for tests of
    the reminders alone (the notices have their own tests)."""
    return demo_chain_with(
        folder, "reminders-only", messages={k: {"send": False} for k in PLAN_CHANGE_NOTICES}
    )


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    with local_infra(workdir=tmp_path_factory.mktemp("infra")) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium, driven by Playwright (the page tests)."""
    chromium = shutil.which("chromium")
    assert chromium, "Chromium is missing: make test installs Debian's chromium"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment() -> Iterator[None]:
    # a developer's exported settings must not leak into the tests
    saved = {
        k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("CLINICFLOW_", "KAFKA_"))
    }
    yield
    os.environ.update(saved)
