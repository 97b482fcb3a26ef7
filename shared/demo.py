"""``clinicflow demo``: one client's journey on the simulated clock, as a timeline."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from aiokafka import AIOKafkaConsumer

from shared.chain import load_chain_config
from shared.infra import local_infra
from shared.stack import free_ports, running_stack
from shared.topics import PUBLIC_TOPICS

DEMO_LOCATION = "beaverton"
STARTUP_ALLOWANCE_S = 20.0


def demo_start(today: datetime) -> datetime:
    """Next Monday 16:00 UTC (a weekday morning in both demo time zones)."""
    days = (7 - today.weekday()) % 7 or 7
    return (today + timedelta(days=days)).replace(hour=16, minute=0, second=0, microsecond=0)


def demo_intake(start: datetime) -> dict[str, Any]:
    return {
        "location_id": DEMO_LOCATION,
        "client": {
            "name": "Dana Demo",
            "email": f"dana+{int(time.time())}@example.com",
            "language": "en",
            "contact_consent": {"email": True, "sms": False},
        },
        "complaints": [
            {
                "region": "neck",
                "side": "right",
                "intensity": 6,
                "qualities": ["ache", "tender"],
                "frequency": "daily, worse after computer work",
                "onset": (start - timedelta(weeks=3)).date().isoformat(),
                "aggravating": ["computer work"],
                "relieving": ["heat"],
                "provoking_movements": ["rotation right"],
            }
        ],
        "goals": ["turn my head without pain"],
        "preferences": {"modality": "either", "times": ["morning", "afternoon"]},
    }


def run_demo(*, config: Path, speed: float, timeout_s: float) -> int:
    chain = load_chain_config(config)
    key = next(k.key for k in chain.api_keys if k.role == "frontdesk" and k.reaches(DEMO_LOCATION))
    zone = chain.location(DEMO_LOCATION).zone
    start = demo_start(datetime.now(UTC))
    clock = f"sim:{start.isoformat().replace('+00:00', 'Z')}@{speed:g}x"
    workdir = Path(tempfile.mkdtemp(prefix="clinicflow-demo-"))
    # The simulation begins a little after now, once the services are up, so the
    # journey starts at ``start`` instead of wherever start-up time carried it.
    anchor = time.time() + STARTUP_ALLOWANCE_S
    extra = {
        "CLINICFLOW_CLOCK_ANCHOR": repr(anchor),
        "CLINICFLOW_REDIS_NAMESPACE": f"demo-{int(time.time())}",
        "NOTIFIER_OUTBOX_PATH": str(workdir / "outbox.jsonl"),
    }
    print(f"clinicflow demo: simulated clock {clock} (1 real second = {speed / 3600:g} h)")
    print("starting broker, Redis and the four services ...", flush=True)
    with (
        local_infra() as infra,
        running_stack(
            infra,
            config=config.resolve(),
            clock=clock,
            ports=free_ports(),
            extra_env=extra,
            log_dir=workdir / "logs",
        ) as stack,
    ):
        time.sleep(max(0.0, anchor - time.time()))
        response = httpx.post(
            f"{stack.urls['intake']}/v1/intakes",
            json=demo_intake(start),
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        response.raise_for_status()
        accepted = response.json()
        events = asyncio.run(
            _follow(infra.kafka_bootstrap_servers, accepted["intake_id"], timeout_s)
        )
    _print_timeline(events, zone, inbox=_inbox(workdir / "outbox.jsonl"))
    print(f"\nservice logs and the message outbox: {workdir}")
    return 0


def _inbox(outbox: Path) -> dict[str, dict[str, Any]]:
    """The messages the console channel delivered, by notification id: what the client
    received (the demo has no mail server; the outbox stands in for it)."""
    if not outbox.exists():
        return {}
    found: dict[str, dict[str, Any]] = {}
    for line in outbox.read_text("utf-8").splitlines():
        if line.strip():
            message = json.loads(line)
            found.setdefault(str(message["notification_id"]), message)
    return found


async def _follow(bootstrap: str, correlation_id: str, timeout_s: float) -> list[dict[str, Any]]:
    """Collect the journey's events until every reminder is sent (or the timeout)."""
    consumer = AIOKafkaConsumer(
        *(spec.name for spec in PUBLIC_TOPICS),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=25,
    )
    await consumer.start()
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not _journey_done(events):
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value)
                    if event.get("correlationid") == correlation_id:
                        events.append(event)
    finally:
        await consumer.stop()
    return events


def _journey_done(events: list[dict[str, Any]]) -> bool:
    types = [e["type"] for e in events]
    if "plan.declined" in types:
        return True
    plans = [e for e in events if e["type"] == "plan.created"]
    if not plans:
        return False
    placed = types.count("visit.booked") + types.count("booking.waitlisted")
    scheduled = types.count("notification.scheduled")
    return placed >= plans[0]["data"]["sessions_total"] and 0 < scheduled <= types.count(
        "notification.sent"
    )


def _print_timeline(
    events: list[dict[str, Any]],
    zone: ZoneInfo,
    *,
    inbox: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Each event at its local time; under each message sent, what the client received."""
    print("\ntimeline (location time):")
    for event in sorted(events, key=lambda e: (e["time"], e["type"])):
        at = datetime.fromisoformat(event["time"]).astimezone(zone)
        print(f"  {at:%a %Y-%m-%d %H:%M %Z}  {_describe(event, zone)}")
        if event["type"] == "notification.sent":
            message = (inbox or {}).get(str(event["data"]["notification_id"]))
            if message is not None:
                for line in _received(message):
                    print(f"      | {line}")


def _received(message: dict[str, Any]) -> list[str]:
    """A message as the client reads it: the subject, then the text."""
    lines = [f"Subject: {message['subject']}"] if message.get("subject") else []
    return lines + str(message.get("body", "")).rstrip("\n").splitlines()


def _local(value: str, zone: ZoneInfo) -> str:
    return f"{datetime.fromisoformat(value).astimezone(zone):%a %b %d %H:%M %Z}"


def _describe(event: dict[str, Any], zone: ZoneInfo) -> str:
    data, kind = event["data"], event["type"]
    if kind == "intake.submitted":
        complaints = ", ".join(f"{c['region']} {c['intensity']}/10" for c in data["complaints"])
        return f"intake submitted: {complaints}; screening {data['screening']['outcome']}"
    if kind == "plan.created":
        phases = " -> ".join(
            f"{p['sessions']} every {p['interval_days']} d" for p in data["phases"]
        )
        return f"plan: {data['condition']}, {data['sessions_total']} sessions ({phases})"
    if kind == "plan.declined":
        return f"plan declined ({data['outcome']}): {data['referral']['detail']}"
    if kind == "visit.booked":
        return (
            f"visit {data['sequence']}/{data['sessions_total']} ({data['visit_id'][:8]}) "
            f"booked for "
            f"{_local(data['start'], zone)} with {data['therapist_id']} in room {data['room']}"
        )
    if kind == "booking.waitlisted":
        return f"visit {data['sequence']} waitlisted: {data['detail']}"
    if kind == "notification.scheduled":
        return f"{data['kind']} scheduled for {_local(data['due_at'], zone)} ({data.get('offset')})"
    if kind == "visit.confirmed":
        return f"visit {data['visit_id'][:8]} confirmed by the client ({data['via']})"
    if kind == "visit.cancelled":
        return f"visit {data['visit_id'][:8]} cancelled ({data.get('cause') or data['by']})"
    if kind == "notification.cancelled":
        return f"{data['kind']} cancelled: {data['reason']}"
    if kind == "notification.sent":
        return f"{data['kind']} for visit {data.get('visit_id', '')[:8]} sent via {data['channel']}"
    return str(kind)
