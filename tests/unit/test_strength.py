"""What production refuses as an API key or a link secret, and where it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.chain import load_chain_config
from shared.runtime import Foundations, StartupError
from shared.settings import CommonSettings
from shared.strength import MIN_LENGTH, weak_keys, weakness
from tests.conftest import DEMO_CHAIN

STRONG = "k3Jq9vX2mT7wLp4sR8nB1cZ6"  # 24 characters, no placeholder word


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (STRONG, None),
        (STRONG + "x" * 40, None),
        (STRONG[:-1], "shorter than 24"),
        ("demo-admin", "'demo'"),
        (f"{STRONG}-DEMO", "'demo'"),
        (f"Demo{STRONG}", "'demo'"),
        (f"my-{STRONG}-Change-Me", "'change-me'"),
        (f"CHANGEME{STRONG}", "'changeme'"),
        (f"{STRONG}placeholder", "'placeholder'"),
    ],
)
def test_weakness(value: str, reason: str | None) -> None:
    found = weakness(value)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found
    assert MIN_LENGTH == 24


def test_every_key_of_the_demo_chain_is_weak_and_named_without_the_key() -> None:
    chain = load_chain_config(DEMO_CHAIN)
    found = weak_keys(chain)
    assert len(found) == len(chain.api_keys)
    assert not any(key.key in line for key in chain.api_keys for line in found)


def _chain_with_key(tmp_path: Path, key: str) -> Path:
    text = DEMO_CHAIN.read_text()
    start = text.index("api_keys:")
    end = text.index("\n", text.index("demo-admin"))
    path = tmp_path / "chain.yaml"
    path.write_text(
        text[:start] + f"api_keys:\n  - {{key: {key}, role: admin, locations: ['*']}}" + text[end:]
    )
    return path


@pytest.mark.parametrize("key", ["short-but-real-key", f"x{STRONG}demoX", f"{STRONG}CHANGE-ME"])
def test_production_refuses_to_start_on_a_weak_key(tmp_path: Path, key: str) -> None:
    settings = CommonSettings(
        CLINICFLOW_ENV="production",
        CLINICFLOW_CHAIN_CONFIG=_chain_with_key(tmp_path, key),
        CLINICFLOW_LINK_SECRET=STRONG,
    )
    with pytest.raises(StartupError, match="API keys refused in production"):
        Foundations.load("intake", settings)
    # the same key is fine outside production
    Foundations.load("intake", settings.model_copy(update={"env": "test"}))


def test_production_starts_on_strong_keys(tmp_path: Path) -> None:
    settings = CommonSettings(
        CLINICFLOW_ENV="production",
        CLINICFLOW_CHAIN_CONFIG=_chain_with_key(tmp_path, STRONG),
        CLINICFLOW_LINK_SECRET=STRONG,
    )
    assert Foundations.load("intake", settings).chain.api_keys[0].key == STRONG


@pytest.mark.parametrize(
    "secret", ["too-short-secret-1", f"{STRONG}-Demo", f"{STRONG}-change-me", f"Example{STRONG}"]
)
def test_production_refuses_a_weak_link_secret(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ValidationError, match="CLINICFLOW_LINK_SECRET is too weak"):
        CommonSettings(
            CLINICFLOW_ENV="production",
            CLINICFLOW_CHAIN_CONFIG=tmp_path / "chain.yaml",
            CLINICFLOW_LINK_SECRET=secret,
        )
