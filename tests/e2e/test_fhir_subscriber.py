"""The example EHR subscriber (``examples/fhir_subscriber.py``) as the separate program
an integration would run, against the four services' topics and a FHIR server that
validates every transaction Bundle with ``fhir.resources``: a client's course
(intake, plan, visits booked, one completed with its pain readings, one cancelled)
and a declined intake reach the EHR as the resources the services' own FHIR
endpoints serve, with the same ids; an EHR that is down for a while loses nothing,
and the whole history delivered again adds nothing."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import fhir
from shared.stack import Stack
from tests.e2e.conftest import sim_now
from tests.e2e.test_cloudevents_binding import Offsets, end_offsets
from tests.fhir_server import FhirServer, fhir_server
from tests.support import TopicLog

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "fhir_subscriber.py"
FRONT_DESK = {"Authorization": "Bearer demo-frontdesk-beaverton"}
ADMIN = {"Authorization": "Bearer demo-admin"}
EMBEDDED_BROKER = (
    "--fetch-max-wait-ms=25",
    "--rebalance-timeout-ms=2000",
    "--session-timeout-ms=6000",
    "--heartbeat-interval-ms=1000",
)
RUN_TIMEOUT_S = 180.0


def intake(email: str, **health: Any) -> dict[str, Any]:
    return {
        "location_id": "beaverton",
        "client": {"name": "Robin Ehr", "email": email, "contact_consent": {"email": True}},
        "complaints": [
            {
                "region": "neck",
                "side": "right",
                "intensity": 7,
                "qualities": ["dull", "ache"],
                "onset": "2026-06-01",
            }
        ],
        "health": health,
        "goals": ["turn my head without pain"],
        "preferences": {"modality": "either"},
    }


async def submit(http: httpx.AsyncClient, stack: Stack, document: dict[str, Any]) -> str:
    answer = await http.post(f"{stack.urls['intake']}/v1/intakes", json=document, headers=ADMIN)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["client_id"])


async def start_group_at(bootstrap: str, group: str, offsets: Offsets) -> None:
    """Commit ``offsets`` for a new consumer group, as an operator would before its first
    run (kafka-consumer-groups --reset-offsets --to-offset): the group starts there
    rather than at the beginning of the topics, which hold every earlier test's records."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, partition) for topic, partition in offsets])
        await consumer.commit({TopicPartition(t, p): offset for (t, p), offset in offsets.items()})
        for (topic, partition), offset in offsets.items():
            assert await consumer.committed(TopicPartition(topic, partition)) == offset
    finally:
        await consumer.stop()


async def subscribe(stack: Stack, base: str, workdir: Path, group: str, start: Offsets) -> str:
    """Run the subscriber from ``start`` until it has been idle for a while; its last
    line (counts)."""
    await start_group_at(stack.infra.kafka_bootstrap_servers, group, start)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        f"--bootstrap={stack.infra.kafka_bootstrap_servers}",
        f"--fhir-base={base}",
        "--chain-id=northwest-nmt",
        f"--group={group}",
        f"--db={workdir / (group + '.sqlite3')}",
        "--until-idle=2.5",
        *EMBEDDED_BROKER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    assert process.returncode == 0, err.decode()[-3000:]
    return out.decode().strip().splitlines()[-1]


def of_patient(server: FhirServer, resource_type: str, client_id: str) -> dict[str, Any]:
    """The server's resources of a type that concern one client."""
    wanted = {"reference": f"Patient/{client_id}"}
    return {
        rid: r
        for rid, r in server.of_type(resource_type).items()
        if r.get("subject") == wanted
        or any(p.get("actor") == wanted for p in r.get("participant", []))
    }


async def test_a_course_reaches_the_ehr_once_with_the_services_ids(
    stack: Stack, topics: TopicLog, tmp_path: Path
) -> None:
    await topics.caught_up()
    start = await end_offsets(stack.infra.kafka_bootstrap_servers)
    async with httpx.AsyncClient(timeout=30) as http:
        client_id = await submit(http, stack, intake(f"ehr-{uuid.uuid4().hex[:8]}@example.com"))
        declined_id = await submit(
            http,
            stack,
            intake(
                f"ehr-dvt-{uuid.uuid4().hex[:8]}@example.com", contraindications=[{"code": "dvt"}]
            ),
        )
        [plan] = await topics.wait_for(lambda: topics.for_client("plan.created", client_id))
        total = plan["data"]["sessions_total"]
        booked = await topics.wait_for(
            lambda: b if len(b := topics.for_client("visit.booked", client_id)) == total else None
        )
        visits = sorted((e["data"] for e in booked), key=lambda v: v["sequence"])
        first, third = visits[0], visits[2]
        cancel = await http.post(
            f"{stack.urls['scheduler']}/v1/visits/{third['visit_id']}/cancel",
            json={"by": "client", "reason": "travelling"},
            headers=FRONT_DESK,
        )
        assert cancel.status_code in (200, 202), cancel.text
        starts = datetime.fromisoformat(first["start"])
        await topics.wait_for(lambda: sim_now(stack) >= starts or None, timeout=120)
        done = await http.post(
            f"{stack.urls['scheduler']}/v1/visits/{first['visit_id']}/complete",
            json={"pain_before": 7, "pain_after": 4, "techniques": []},
            headers=ADMIN,
        )
        assert done.status_code in (200, 202), done.text
        await topics.wait_for(lambda: topics.for_client("visit.completed", client_id))
        await topics.wait_for(lambda: topics.for_client("visit.cancelled", client_id))
        await topics.wait_for(lambda: topics.for_client("plan.declined", declined_id))
        await topics.caught_up()

        async with fhir_server() as (server, base):
            server.down_for = 2  # the EHR is down when the subscriber starts
            counts = await subscribe(stack, base, tmp_path, f"ehr-{uuid.uuid4().hex[:6]}", start)
            assert server.down_for == 0 and server.bundles > 0, counts
            assert server.refused == []

            patient = server.resources[("Patient", client_id)]
            assert patient["name"] == [{"text": "Robin Ehr"}]
            [care_plan] = of_patient(server, "CarePlan", client_id).values()
            assert care_plan["id"] == plan["data"]["plan_id"]
            assert [g["description"]["text"] for g in care_plan["contained"]] == [
                "turn my head without pain"
            ]
            appointments = of_patient(server, "Appointment", client_id)
            # every visit booked, the cancelled one's make-up too
            every = {e["data"]["visit_id"] for e in topics.for_client("visit.booked", client_id)}
            assert len(every) > total
            assert set(appointments) == every
            statuses = {rid: a["status"] for rid, a in appointments.items()}
            assert statuses[first["visit_id"]] == "fulfilled"
            assert statuses[third["visit_id"]] == "cancelled"
            assert set(statuses.values()) == {"fulfilled", "cancelled", "booked"}
            readings = of_patient(server, "Observation", client_id)
            before, after = fhir.visit_pain_ids(first["visit_id"])
            assert {rid: o["valueInteger"] for rid, o in readings.items()} == {before: 7, after: 4}
            [referral] = of_patient(server, "ServiceRequest", declined_id).values()
            assert referral["intent"] == "proposal"

            # the services' own FHIR endpoints name the same resources
            served = await http.get(
                f"{stack.urls['scheduler']}/fhir/r4/Appointment",
                params={"patient": client_id},
                headers=FRONT_DESK,
            )
            assert served.status_code == 200, served.text
            assert {e["resource"]["id"] for e in served.json().get("entry", [])} == set(
                appointments
            )
            served = await http.get(
                f"{stack.urls['planner']}/fhir/r4/Observation",
                params={"patient": client_id, "code": "http://loinc.org|72514-3"},
                headers=FRONT_DESK,
            )
            assert served.status_code == 200, served.text
            assert {e["resource"]["id"] for e in served.json().get("entry", [])} == set(readings)

            # the journey delivered again (a new group, a new state file): nothing new
            held = set(server.resources)
            versions = dict(server.versions)
            await subscribe(stack, base, tmp_path, f"ehr-again-{uuid.uuid4().hex[:6]}", start)
            assert set(server.resources) == held
            assert server.versions[("Patient", client_id)] > versions[("Patient", client_id)]
            assert server.refused == []
