"""What production refuses as an API key or a link secret: too short to resist
guessing, or a word that marks a value as not real (the demo chain's keys, the
placeholders of deploy/k8s). Pure: settings and the start-up check call it.

24 characters is the floor: ``openssl rand -hex 24`` (what deploy/k8s suggests)
gives 48, ``secrets.token_urlsafe(24)`` 32. A placeholder word counts in any case
and anywhere in the value (``Demo``, ``my-CHANGE-ME-key``)."""

from __future__ import annotations

from typing import Final

from shared.chain import ChainConfig

MIN_LENGTH: Final = 24
PLACEHOLDER_WORDS: Final = ("demo", "change-me", "changeme", "placeholder", "example")


def weakness(value: str) -> str | None:
    """Why ``value`` may not guard production, or None when it may."""
    lowered = value.lower()
    word = next((w for w in PLACEHOLDER_WORDS if w in lowered), None)
    if word is not None:
        return f"contains the placeholder word {word!r}"
    if len(value) < MIN_LENGTH:
        return f"shorter than {MIN_LENGTH} characters"
    return None


def weak_keys(chain: ChainConfig) -> list[str]:
    """Each API key of ``chain`` that production refuses, named (never shown) with why."""
    found = []
    for key in chain.api_keys:
        reason = weakness(key.key)
        if reason is not None:
            found.append(f"{key.name or key.role}: {reason}")
    return found
