"""An example subscriber that keeps an EHR's FHIR R4 server up to date from clinicflow's
topics: each event becomes one FHIR ``transaction`` Bundle, POSTed to the server's base.

It is what an EHR integration would run beside a clinicflow deployment. It reads the
public topics (``clinic.intake``, ``clinic.plans``, ``clinic.visits``,
``clinic.notifications``) and turns their events into the resources the services'
own ``/fhir/r4`` endpoints serve, with the same mapping (``shared.fhir``, pure and
part of the ``clinicflow`` package) and so the same resource ids:

| event | resources PUT |
|---|---|
| ``intake.submitted`` | Patient, a Condition per contraindication |
| ``client.updated`` | Patient |
| ``client.merged`` | the retired Patient, inactive and replaced by the survivor |
| ``plan.created`` / ``plan.revised`` | CarePlan (a revision's referral: ServiceRequest) |
| ``plan.completed`` | CarePlan, ended (a referral: ServiceRequest) |
| ``plan.declined`` | ServiceRequest (the referral) |
| ``visit.booked`` / ``rescheduled`` / ``confirmed`` / ``cancelled`` / ``no_show`` | Appointment |
| ``visit.completed`` | Appointment (fulfilled), the two pain Observations, CarePlan |
| ``checkin.replied`` | Observation (pain at the check-in) |

What it shows:

- every entry is a ``PUT <Type>/<id>`` (update as create), so a redelivered event
  writes the same resources again and an EHR ends with one copy of each;
- what a later event needs of an earlier one (the booked visit behind a cancel, the
  intake goals behind a plan, the visits done of a plan) is kept in a small SQLite
  file, written in the same transaction that records the event as delivered, and
  only after the FHIR server accepted the Bundle; an offset is committed after that;
- a Bundle the server refuses (4xx: the OperationOutcome says why) is parked in a
  JSONL file with the event, and the loop goes on; a server that does not answer
  (5xx, 429, no connection) is retried with backoff, the record held until it is
  accepted, so nothing is lost while the EHR is down;
- a record that is not a clinicflow CloudEvent, or under a schema version this code
  does not read, is parked with the reason.

    python examples/fhir_subscriber.py --bootstrap 127.0.0.1:9092 \\
        --fhir-base https://ehr.example/fhir/r4 --chain-id northwest-nmt \\
        --db fhir-subscriber.sqlite3 [--token TOKEN] [--until-idle 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from shared import fhir
from shared.codec import DecodeError, decode_data, decode_envelope
from shared.envelope import Envelope
from shared.events import (
    CheckinReplied,
    ClientMerged,
    ClientUpdated,
    IntakeSubmitted,
    PlanCompleted,
    PlanDeclined,
)
from shared.events.plans import PlanData, PlanRevised
from shared.events.visits import (
    VisitBooked,
    VisitCancelled,
    VisitCompleted,
    VisitConfirmed,
    VisitNoShow,
    VisitRescheduled,
)

log = logging.getLogger("fhir_subscriber")

TOPICS = ("clinic.intake", "clinic.plans", "clinic.visits", "clinic.notifications")
FHIR_JSON = "application/fhir+json"
JOIN_DEADLINE_S = 60.0
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
# statuses an EHR answers when it is down or overloaded: the Bundle is sent again
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Parked(Exception):
    """An event that will not reach the EHR as it is: parked with this reason."""


class Unavailable(Exception):
    """The FHIR server did not take the Bundle now; the same Bundle is sent again."""


# ---------------------------------------------------------------------------
# What later events need of earlier ones (SQLite)


class State:
    """Delivered events and what the mapping needs of them, in one SQLite file.

    ``begin``/``commit``/``rollback`` frame one event: its reads and writes, then the
    row that marks it delivered, committed only once the FHIR server took its Bundle."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        for table in (
            "delivered (event_id TEXT PRIMARY KEY, type TEXT NOT NULL, at TEXT NOT NULL)",
            "intakes (intake_id TEXT PRIMARY KEY, goals TEXT NOT NULL)",
            "plans (plan_id TEXT PRIMARY KEY, intake_id TEXT NOT NULL, event_type TEXT NOT NULL,"
            " latest TEXT NOT NULL, started_at TEXT NOT NULL, completion TEXT)",
            "visits (visit_id TEXT PRIMARY KEY, plan_id TEXT NOT NULL, booked TEXT NOT NULL,"
            " status TEXT NOT NULL, confirmed INTEGER NOT NULL)",
        ):
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table}")

    def begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._db.execute("COMMIT")

    def rollback(self) -> None:
        self._db.execute("ROLLBACK")

    def delivered(self, event_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM delivered WHERE event_id = ?", (event_id,))
        return row.fetchone() is not None

    def mark_delivered(self, envelope: Envelope) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO delivered VALUES (?, ?, ?)",
            (envelope.id, envelope.type, datetime.now(UTC).isoformat()),
        )

    def keep_intake(self, intake: IntakeSubmitted) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO intakes VALUES (?, ?)",
            (intake.intake_id, json.dumps(intake.goals)),
        )

    def goals(self, intake_id: str) -> list[str]:
        row = self._db.execute("SELECT goals FROM intakes WHERE intake_id = ?", (intake_id,))
        found = row.fetchone()
        return list(json.loads(found[0])) if found else []

    def keep_plan(self, plan: PlanData) -> None:
        """The plan's latest version (a late older version changes nothing)."""
        current = self.plan(plan.plan_id)
        if current is not None and current[0].version >= plan.version:
            return
        started = current[1] if current is not None else plan.created_at
        self._db.execute(
            "INSERT OR REPLACE INTO plans VALUES (?, ?, ?, ?, ?, ?)",
            (
                plan.plan_id,
                plan.intake_id,
                plan.event_type,
                plan.model_dump_json(),
                started.isoformat(),
                None if current is None or current[2] is None else current[2].model_dump_json(),
            ),
        )

    def keep_completion(self, done: PlanCompleted) -> None:
        self._db.execute(
            "UPDATE plans SET completion = ? WHERE plan_id = ?",
            (done.model_dump_json(), done.plan_id),
        )

    def plans_of_intake(self, intake_id: str) -> list[str]:
        rows = self._db.execute("SELECT plan_id FROM plans WHERE intake_id = ?", (intake_id,))
        return [str(row[0]) for row in rows]

    def plan(self, plan_id: str) -> tuple[PlanData, datetime, PlanCompleted | None] | None:
        """The plan's latest version, when its first was made, and how it ended."""
        row = self._db.execute(
            "SELECT event_type, latest, started_at, completion FROM plans WHERE plan_id = ?",
            (plan_id,),
        ).fetchone()
        if row is None:
            return None
        model = PlanRevised if row[0] == "plan.revised" else PlanData
        completion = PlanCompleted.model_validate_json(row[3]) if row[3] else None
        return model.model_validate_json(row[1]), datetime.fromisoformat(row[2]), completion

    def sessions_done(self, plan_id: str) -> int:
        row = self._db.execute(
            "SELECT count(*) FROM visits WHERE plan_id = ? AND status = 'completed'", (plan_id,)
        )
        return int(row.fetchone()[0])

    def keep_visit(self, visit: VisitBooked, status: str, *, confirmed: bool) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO visits VALUES (?, ?, ?, ?, ?)",
            (visit.visit_id, visit.plan_id, visit.model_dump_json(), status, int(confirmed)),
        )

    def visit(self, visit_id: str) -> tuple[VisitBooked, str, bool] | None:
        row = self._db.execute(
            "SELECT booked, status, confirmed FROM visits WHERE visit_id = ?", (visit_id,)
        ).fetchone()
        if row is None:
            return None
        return VisitBooked.model_validate_json(row[0]), str(row[1]), bool(row[2])

    def close(self) -> None:
        self._db.close()


# ---------------------------------------------------------------------------
# Events to resources


@dataclass
class Mapper:
    """Turns one event into the resources it changes, reading and updating ``state``
    (inside the caller's transaction)."""

    state: State
    chain_id: str

    def resources(self, envelope: Envelope) -> list[dict[str, Any]]:
        data = decode_data(envelope)
        handler = getattr(self, "_" + envelope.type.replace(".", "_"), None)
        if handler is None:
            return []
        return list(handler(data))

    def _intake_submitted(self, intake: IntakeSubmitted) -> list[dict[str, Any]]:
        self.state.keep_intake(intake)
        # topics are not ordered with each other: a plan read before its intake gets the
        # intake's goals now
        plans = [
            r for p in self.state.plans_of_intake(intake.intake_id) for r in self._care_plan(p)
        ]
        return [
            fhir.patient(intake.client, chain_id=self.chain_id),
            *fhir.contraindication_conditions(intake),
            *plans,
        ]

    def _client_updated(self, update: ClientUpdated) -> list[dict[str, Any]]:
        return [fhir.patient(update.client, chain_id=self.chain_id)]

    def _client_merged(self, merge: ClientMerged) -> list[dict[str, Any]]:
        return [
            fhir.merged_patient(
                merge.merged_client_id, survivor_id=merge.client_id, chain_id=self.chain_id
            )
        ]

    def _plan_created(self, plan: PlanData) -> list[dict[str, Any]]:
        self.state.keep_plan(plan)
        found = self._care_plan(plan.plan_id)
        if isinstance(plan, PlanRevised) and (
            request := fhir.referral_of(plan, chain_id=self.chain_id)
        ):
            found.append(request)
        return found

    _plan_revised = _plan_created

    def _plan_completed(self, done: PlanCompleted) -> list[dict[str, Any]]:
        self.state.keep_completion(done)
        found = self._care_plan(done.plan_id)
        if request := fhir.referral_of(done, chain_id=self.chain_id):
            found.append(request)
        return found

    def _plan_declined(self, declined: PlanDeclined) -> list[dict[str, Any]]:
        request = fhir.referral_of(declined, chain_id=self.chain_id)
        return [request] if request is not None else []

    def _visit_booked(self, visit: VisitBooked) -> list[dict[str, Any]]:
        self.state.keep_visit(visit, "booked", confirmed=False)
        return self._appointment(visit.visit_id)

    def _visit_rescheduled(self, moved: VisitRescheduled) -> list[dict[str, Any]]:
        known = self.state.visit(moved.visit_id)
        if known is None:
            raise Parked(f"visit {moved.visit_id} was never booked here")
        visit = known[0].model_copy(
            update={
                "therapist_id": moved.therapist_id,
                "room": moved.room,
                "start": moved.start,
                "end": moved.end,
                "timezone": moved.timezone,
            }
        )
        # a moved visit needs confirming again
        self.state.keep_visit(visit, known[1], confirmed=False)
        return self._appointment(moved.visit_id)

    def _visit_confirmed(self, confirmed: VisitConfirmed) -> list[dict[str, Any]]:
        return self._status(confirmed.visit_id, None, confirmed=True)

    def _visit_cancelled(self, cancelled: VisitCancelled) -> list[dict[str, Any]]:
        return self._status(cancelled.visit_id, "cancelled")

    def _visit_no_show(self, missed: VisitNoShow) -> list[dict[str, Any]]:
        return self._status(missed.visit_id, "no_show")

    def _visit_completed(self, done: VisitCompleted) -> list[dict[str, Any]]:
        found = self._status(done.visit_id, "completed")
        found += fhir.visit_pain_observations(
            visit_id=done.visit_id,
            pain_before=done.pain_before,
            pain_after=done.pain_after,
            completed_at=done.completed_at,
            client_id=done.client_id,
            plan_id=done.plan_id,
            chain_id=self.chain_id,
        )
        return found + self._care_plan(done.plan_id)

    def _checkin_replied(self, reply: CheckinReplied) -> list[dict[str, Any]]:
        if reply.plan_id is None:  # an Observation here is always under a CarePlan
            return []
        return [
            fhir.checkin_pain_observation(
                notification_id=reply.notification_id,
                pain=reply.pain,
                replied_at=reply.replied_at,
                client_id=reply.client_id,
                plan_id=reply.plan_id,
                chain_id=self.chain_id,
            )
        ]

    def _status(
        self, visit_id: str, status: str | None, *, confirmed: bool | None = None
    ) -> list[dict[str, Any]]:
        known = self.state.visit(visit_id)
        if known is None:
            raise Parked(f"visit {visit_id} was never booked here")
        visit, was, was_confirmed = known
        self.state.keep_visit(
            visit, status or was, confirmed=was_confirmed if confirmed is None else confirmed
        )
        return self._appointment(visit_id)

    def _appointment(self, visit_id: str) -> list[dict[str, Any]]:
        known = self.state.visit(visit_id)
        assert known is not None
        visit, status, confirmed = known
        found = fhir.appointment(visit, status, chain_id=self.chain_id, confirmed=confirmed)
        return [found] if found is not None else []

    def _care_plan(self, plan_id: str) -> list[dict[str, Any]]:
        known = self.state.plan(plan_id)
        if known is None:  # a completion or visit of a plan from before this subscriber
            return []
        plan, started_at, completion = known
        return [
            fhir.care_plan(
                plan,
                chain_id=self.chain_id,
                goals=self.state.goals(plan.intake_id),
                sessions_done=self.state.sessions_done(plan_id),
                started_at=started_at,
                completion=completion,
            )
        ]


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A FHIR transaction Bundle that PUTs each resource at its id (update as create)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


# ---------------------------------------------------------------------------
# The FHIR server


class Ehr:
    """POSTs transaction Bundles to a FHIR server's base."""

    def __init__(self, base: str, token: str | None, timeout_s: float = 30.0) -> None:
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._base = base.rstrip("/")  # a transaction is POSTed to the base itself
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout_s)

    async def send(self, bundle: dict[str, Any]) -> None:
        """Raises ``Unavailable`` (try again) or ``Parked`` (the server refused it)."""
        try:
            answer = await self._http.post(self._base, content=json.dumps(bundle))
        except httpx.HTTPError as exc:
            raise Unavailable(f"no answer from the FHIR server: {exc!r}") from exc
        if answer.status_code in RETRIED_STATUSES:
            raise Unavailable(f"the FHIR server answered {answer.status_code}")
        if not answer.is_success:
            raise Parked(
                f"the FHIR server refused the Bundle ({answer.status_code}): {_why(answer)}"
            )
        try:
            reply = answer.json()
        except ValueError as exc:
            raise Parked(f"the FHIR server's answer is not JSON: {answer.text[:200]!r}") from exc
        if not isinstance(reply, dict) or reply.get("type") != "transaction-response":
            raise Parked(f"the FHIR server did not answer a transaction-response: {reply!r:.200}")

    async def close(self) -> None:
        await self._http.aclose()


def _why(answer: httpx.Response) -> str:
    """The OperationOutcome's diagnostics, else the start of the body."""
    try:
        issues = answer.json().get("issue", [])
        return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in issues) or answer.text
    except (ValueError, AttributeError):
        return answer.text[:500]


# ---------------------------------------------------------------------------
# One record


class Parking:
    """Appends one JSON line per parked record: where it was, why, and its value."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def park(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        entry: dict[str, Any] = {
            "parked_at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode(errors="replace") if record.key is not None else None,
        }
        try:
            entry["value"] = record.value.decode() if record.value is not None else None
        except UnicodeDecodeError:
            entry["value_base64"] = base64.b64encode(record.value or b"").decode()
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")


class Subscriber:
    def __init__(self, state: State, mapper: Mapper, ehr: Ehr, parking: Parking) -> None:
        self.state, self.mapper, self.ehr, self.parking = state, mapper, ehr, parking
        self.counts: Counter[str] = Counter()

    async def handle(self, record: ConsumerRecord[bytes, bytes], stop: asyncio.Event) -> bool:
        """Deliver one record's resources; False when ``stop`` came while the FHIR server
        was down (the record is then not handled and comes again)."""
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        try:
            envelope = decode_envelope(record.value)
        except DecodeError as exc:
            self._park(record, where, str(exc))
            return True
        if self.state.delivered(envelope.id):
            self.counts["duplicates"] += 1
            return True
        delay = RETRY_FIRST_S
        while True:
            self.state.begin()
            try:
                resources = self.mapper.resources(envelope)
                if resources:
                    await self.ehr.send(transaction(resources))
            except Unavailable as exc:
                self.state.rollback()
                log.warning("%s: %s; again in %.1f s", where, exc, delay)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return False
                except TimeoutError:
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
            except (Parked, DecodeError) as exc:
                self.state.rollback()
                self.state.begin()
                self.state.mark_delivered(envelope)  # parked once, not on every redelivery
                self.state.commit()
                self._park(record, where, f"{envelope.type} {envelope.id}: {exc}")
                return True
            except BaseException:
                self.state.rollback()
                raise
            self.state.mark_delivered(envelope)
            self.state.commit()
            self.counts["bundles" if resources else "skipped"] += 1
            self.counts["resources"] += len(resources)
            return True

    def _park(self, record: ConsumerRecord[bytes, bytes], where: str, reason: str) -> None:
        log.error("parked %s: %s", where, reason)
        self.parking.park(record, reason)
        self.counts["parked"] += 1


# ---------------------------------------------------------------------------
# The consumer loop


async def commit(consumer: AIOKafkaConsumer, handled: dict[TopicPartition, int]) -> None:
    """Commit the offsets after the handled records; a failed commit loses nothing (the
    records come again and are recognised as delivered)."""
    if not handled:
        return
    try:
        await consumer.commit(dict(handled))
    except (CommitFailedError, KafkaError) as exc:
        log.warning("commit failed (the records will be delivered again): %r", exc)
    handled.clear()


async def run(args: argparse.Namespace, emit: Callable[[str], None] = print) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    state = State(args.db)
    ehr = Ehr(args.fhir_base, args.token)
    parking = Parking(args.rejected or args.db.with_name(args.db.name + ".parked.jsonl"))
    subscriber = Subscriber(state, Mapper(state, args.chain_id), ehr, parking)
    consumer = AIOKafkaConsumer(
        *TOPICS,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=args.fetch_max_wait_ms,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        rebalance_timeout_ms=args.rebalance_timeout_ms,
    )
    status = 0
    started = last_record = time.monotonic()
    await consumer.start()
    try:
        handled: dict[TopicPartition, int] = {}
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    if not await subscriber.handle(record, stop):
                        break
                    handled[tp] = record.offset + 1
                if stop.is_set():
                    break
            if batches:
                last_record = time.monotonic()
            await commit(consumer, handled)
            if args.until_idle is not None:
                idle = time.monotonic() - last_record
                if not consumer.assignment() and time.monotonic() - started > JOIN_DEADLINE_S:
                    log.error("no partitions assigned; giving up")
                    status = 1
                    break
                if consumer.assignment() and idle >= args.until_idle:
                    break
        await commit(consumer, handled)
    finally:
        await consumer.stop()
        await ehr.close()
        state.close()
    emit(json.dumps(dict(subscriber.counts), sort_keys=True))
    return status


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Example EHR subscriber: clinicflow events as FHIR R4 transaction Bundles.",
        epilog=(
            "For the embedded Tansu broker of `make run` use --fetch-max-wait-ms 25 "
            "--rebalance-timeout-ms 2000 --session-timeout-ms 6000 --heartbeat-interval-ms 1000."
        ),
    )
    parser.add_argument("--bootstrap", required=True, metavar="HOST:PORT")
    parser.add_argument("--fhir-base", required=True, metavar="URL", help="the FHIR server's base")
    parser.add_argument("--token", help="bearer token for the FHIR server")
    parser.add_argument("--chain-id", required=True, help="the chain (identifier systems)")
    parser.add_argument("--group", default="fhir-example", help="consumer group id")
    parser.add_argument("--db", type=Path, required=True, metavar="PATH", help="SQLite state")
    parser.add_argument("--rejected", type=Path, metavar="PATH", help="JSONL of parked records")
    parser.add_argument("--until-idle", type=float, metavar="SECONDS")
    tuning = parser.add_argument_group("consumer tuning (defaults: the Kafka client's own)")
    tuning.add_argument("--fetch-max-wait-ms", type=int, default=500, metavar="MS")
    tuning.add_argument("--rebalance-timeout-ms", type=int, default=10_000, metavar="MS")
    tuning.add_argument("--session-timeout-ms", type=int, default=10_000, metavar="MS")
    tuning.add_argument("--heartbeat-interval-ms", type=int, default=3_000, metavar="MS")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
