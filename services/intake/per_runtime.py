"""Objects the intake builds once per runtime, at the first request that needs them,
instead of at every request: scripts registered once, and state that outlives a
request (the outbox remembers what this process published). They live as long as
the runtime they were built for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from shared.runtime import Runtime

T = TypeVar("T")
_HELD = "_intake_parts"


def once_per_runtime(runtime: Runtime, name: str, build: Callable[[], T]) -> T:
    """``build()`` the first time ``name`` is asked of ``runtime``; the same after."""
    held: dict[str, Any] = vars(runtime).setdefault(_HELD, {})
    if name not in held:
        held[name] = build()
    return cast(T, held[name])
