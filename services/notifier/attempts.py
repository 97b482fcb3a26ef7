"""One send of a notification, recorded on both sides of the provider's answer (pure:
records in, records out; the time is an argument).

A scheduled notification turns ``sending`` at the last moment before its channel
hands it over (connected, the message built), and ``sent`` as soon as the provider
accepts it. So a record somebody else finds ``sending`` (its sender's claim ran out:
the sender was killed, or lost Redis for longer than its lease) is a send whose
outcome nobody knows: the provider may have taken it, or not.

The policy for that, the same on every channel: **it is not sent again.** At most
once: a second reminder is a fault the client sees, and a chain's SMS provider bills
it. It is closed ``failed`` with the reason ``outcome_unknown``, published as
``notification.failed`` and, with its record, on the dead-letter topic, and counted
(``clinicflow_notification_outcomes_unknown_total``), so the desk can resend by hand
if the client did not get it. Only a kill inside the send itself, or between the
provider's answer and our record of it (``clinicflow_notification_record_seconds``),
can make one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

SENDING = "sending"
UNKNOWN = "outcome_unknown"
CLOSED = frozenset({"sent", "failed", "suppressed"})


def closed(record: dict[str, Any], status: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """``record`` closed as ``status`` (sent, failed, suppressed) at ``at``."""
    return {**record, "status": status, f"{status}_at": at.isoformat(), **fields}


def begun(record: dict[str, Any], *, channel: str, at: datetime) -> dict[str, Any]:
    """The attempt, recorded before the message is handed over."""
    return {**record, "status": SENDING, "channel": channel, "sending_at": at.isoformat()}


def accepted(record: dict[str, Any], *, at: datetime, ref: str | None) -> dict[str, Any]:
    """The provider took it: sent, with the provider's own id for it when it gave one."""
    return closed(record, "sent", at, **({"provider_ref": ref} if ref else {}))


def unknown(record: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    """A ``sending`` record whose sender is gone: failed, never sent again."""
    attempts = int(record.get("attempts", 0)) + 1
    return closed(record, "failed", at, reason=UNKNOWN, attempts=attempts)


def retry_after_failure(record: dict[str, Any], *, attempts: int, error: str) -> dict[str, Any]:
    """Back to ``scheduled`` after a failed attempt that will be tried again."""
    waiting = {k: v for k, v in record.items() if k != "sending_at"}
    return {**waiting, "status": "scheduled", "attempts": attempts, "last_error": error}
