"""An example subscriber of ``clinic.visits``, written the way another team (here:
billing) would write one: against the published contract only - the CloudEvents
envelope and the JSON Schemas in ``schemas/`` - with nothing imported from
clinicflow itself.

What it shows:

- its own consumer group, reading from the earliest offset on first start, with
  auto-commit off: an offset is committed only once its record is handled;
- each event's ``data`` validated against the schema its ``dataschema`` names
  (``urn:clinicflow:schema:visit.completed:v1`` is the file
  ``visit.completed.v1.schema.json``);
- forward compatibility: event types it does not bill are skipped and counted,
  fields it does not know are accepted, and a schema version it does not have is
  skipped with a warning (and parked, to be replayed once its schema is here);
- a record that is not JSON, not a CloudEvent or not valid under its schema is
  logged and parked in a JSONL file with its topic, partition, offset and reason;
  the loop goes on;
- at-least-once delivery made harmless: the ledger lives in SQLite, and the event
  id is its primary key, so a redelivered event is never billed twice, across
  restarts too.

The billing rules are deliberately trivial: a completed visit and a no-show are
billable, a cancellation is recorded (with its ``late`` flag) but not billed.

    python examples/visits_subscriber.py --bootstrap 127.0.0.1:9092 \\
        --group billing-example --db billing.sqlite3 [--schemas DIR] [--until-idle 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import re
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

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from jsonschema import Draft202012Validator, FormatChecker

log = logging.getLogger("visits_subscriber")

TOPIC = "clinic.visits"
DEFAULT_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
# a dataschema names an event type and its schema version
SCHEMA_ID = re.compile(r"^urn:clinicflow:schema:(?P<type>[a-z0-9_.]+):v(?P<version>[1-9][0-9]*)$")
CLOUDEVENT_REQUIRED = ("specversion", "id", "source", "type")
JOIN_DEADLINE_S = 60.0

# date-time values must carry their offset (every clinicflow time is timezone-aware)
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_aware_datetime(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


class Rejected(Exception):
    """A record this subscriber cannot accept: it is parked with this reason."""


class Unsupported(Exception):
    """An event under a schema version this subscriber does not have (yet)."""


# ---------------------------------------------------------------------------
# Schemas


class Schemas:
    """The published schemas, looked up by ``dataschema`` and opened to additions."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._validators: dict[str, Draft202012Validator] = {}

    def envelope(self) -> Draft202012Validator | None:
        """The published envelope schema (clinicflow's extension attributes), if present."""
        path = self.directory / "envelope.schema.json"
        return self._load("envelope", path) if path.is_file() else None

    def for_event(self, event_type: str, dataschema: str) -> Draft202012Validator:
        match = SCHEMA_ID.match(dataschema)
        if match is None:
            raise Rejected(f"dataschema {dataschema!r} is not a clinicflow schema id")
        if match["type"] != event_type:
            raise Rejected(f"dataschema {dataschema!r} does not belong to type {event_type!r}")
        path = self.directory / f"{match['type']}.v{match['version']}.schema.json"
        if not path.is_file():
            raise Unsupported(f"no schema {dataschema} here ({path.name} not in {self.directory})")
        return self._load(dataschema, path)

    def _load(self, key: str, path: Path) -> Draft202012Validator:
        if key not in self._validators:
            schema = _open_to_additions(json.loads(path.read_text(encoding="utf-8")))
            self._validators[key] = Draft202012Validator(schema, format_checker=FORMATS)
        return self._validators[key]


def _open_to_additions(node: Any) -> Any:
    """The schema without ``additionalProperties: false``: a newer producer may add
    fields anywhere (that is not a breaking change), and this reader ignores them."""
    if isinstance(node, dict):
        return {
            key: _open_to_additions(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [_open_to_additions(item) for item in node]
    return node


def _problems(validator: Draft202012Validator, document: object, root: str) -> str:
    found = sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.path])
    return "; ".join(
        ".".join([root, *(str(p) for p in error.path)]) + f": {error.message}"
        for error in found[:5]
    )


# ---------------------------------------------------------------------------
# Ledger (SQLite): the billing lines, keyed by event id


@dataclass(frozen=True)
class Entry:
    event_id: str
    kind: str  # completed | no_show | cancelled
    billable: bool
    visit_id: str
    client_id: str
    plan_id: str
    location_id: str
    at: str  # when it happened (RFC 3339, from the event)
    late: bool | None = None

    def line(self) -> str:
        what = "BILL  " if self.billable else "RECORD"
        late = "" if self.late is None else f" late={str(self.late).lower()}"
        return (
            f"{what} {self.kind:<9} visit={self.visit_id} client={self.client_id} "
            f"plan={self.plan_id} location={self.location_id} at={self.at}{late}"
        )


class Ledger:
    """One row per handled event. The event id is the primary key, so writing an
    event that is already there changes nothing: that is the dedupe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            """CREATE TABLE IF NOT EXISTS ledger (
                event_id    TEXT PRIMARY KEY,
                kind        TEXT NOT NULL,
                billable    INTEGER NOT NULL,
                visit_id    TEXT NOT NULL,
                client_id   TEXT NOT NULL,
                plan_id     TEXT NOT NULL,
                location_id TEXT NOT NULL,
                at          TEXT NOT NULL,
                late        INTEGER,
                topic       TEXT NOT NULL,
                partition   INTEGER NOT NULL,
                "offset"    INTEGER NOT NULL,
                recorded_at TEXT NOT NULL
            )"""
        )
        self._db.commit()

    def add(self, entry: Entry, record: ConsumerRecord[bytes, bytes]) -> bool:
        """Write ``entry``; False when its event was already in the ledger."""
        with self._db:  # one transaction, committed before the offset is
            cursor = self._db.execute(
                "INSERT INTO ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(event_id) DO NOTHING",
                (
                    entry.event_id,
                    entry.kind,
                    int(entry.billable),
                    entry.visit_id,
                    entry.client_id,
                    entry.plan_id,
                    entry.location_id,
                    entry.at,
                    None if entry.late is None else int(entry.late),
                    record.topic,
                    record.partition,
                    record.offset,
                    datetime.now(UTC).isoformat(),
                ),
            )
        return cursor.rowcount == 1

    def close(self) -> None:
        self._db.close()


# ---------------------------------------------------------------------------
# Parking: records that could not be handled, kept with their reason


class Parking:
    """Appends one JSON line per parked record: where it was, why, and its value."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def park(self, record: ConsumerRecord[bytes, bytes], reason: str, kind: str) -> None:
        value = record.value
        entry: dict[str, Any] = {
            "parked_at": datetime.now(UTC).isoformat(),
            "kind": kind,  # rejected | unsupported
            "reason": reason,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key.decode(errors="replace") if record.key is not None else None,
        }
        try:
            entry["value"] = value.decode() if value is not None else None
        except UnicodeDecodeError:
            entry["value_base64"] = base64.b64encode(value).decode() if value else None
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------
# Handling one record


@dataclass(frozen=True)
class Billing:
    """What one event type means for billing, and which field says when."""

    kind: str
    billable: bool
    at_field: str


# a real billing team may charge late cancellations; this example records them only
BILLING = {
    "visit.completed": Billing("completed", billable=True, at_field="completed_at"),
    "visit.no_show": Billing("no_show", billable=True, at_field="recorded_at"),
    "visit.cancelled": Billing("cancelled", billable=False, at_field="cancelled_at"),
}


def entry_of(event: dict[str, Any]) -> Entry:
    """The ledger entry of an event whose type is in ``BILLING``."""
    rule, data = BILLING[event["type"]], event["data"]
    return Entry(
        event_id=event["id"],
        kind=rule.kind,
        billable=rule.billable,
        visit_id=data["visit_id"],
        client_id=data["client_id"],
        plan_id=data["plan_id"],
        location_id=data["location_id"],
        at=data[rule.at_field],
        late=data.get("late"),  # cancellations say whether they came late
    )


def parse_cloudevent(value: bytes | None, envelope: Draft202012Validator | None) -> dict[str, Any]:
    """The CloudEvent in a record value, or ``Rejected`` with what is wrong with it."""
    if value is None:
        raise Rejected("empty record value")
    try:
        event = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(f"value is not JSON: {exc}") from exc
    except RecursionError as exc:  # JSON nested deeper than the parser goes
        raise Rejected("value is not JSON this reader can parse: nested too deeply") from exc
    if not isinstance(event, dict):
        raise Rejected("not a CloudEvent: the value is not a JSON object")
    missing = [name for name in CLOUDEVENT_REQUIRED if not event.get(name)]
    if missing:
        raise Rejected(f"not a CloudEvent: missing {', '.join(missing)}")
    if event["specversion"] != "1.0":
        raise Rejected(f"not a CloudEvents 1.0 event: specversion {event['specversion']!r}")
    if not isinstance(event.get("dataschema"), str):
        raise Rejected("not a clinicflow event: no dataschema")
    if not isinstance(event.get("data"), dict):
        raise Rejected("not a clinicflow event: data is not a JSON object")
    if envelope is not None and (problems := _problems(envelope, event, "envelope")):
        raise Rejected(f"not a clinicflow envelope: {problems}")
    return event


class Subscriber:
    """Turns records of ``clinic.visits`` into ledger entries; never raises for a record."""

    def __init__(
        self,
        schemas: Schemas,
        ledger: Ledger,
        parking: Parking,
        emit: Callable[[str], None] = print,
    ) -> None:
        self.schemas = schemas
        self.envelope = schemas.envelope()
        self.ledger = ledger
        self.parking = parking
        self.emit = emit
        self.counts: Counter[str] = Counter()
        self.skipped_types: Counter[str] = Counter()

    def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        try:
            event = parse_cloudevent(record.value, self.envelope)
            if event["type"] not in BILLING:  # a type billing does not use, or one from the future
                if not self.skipped_types[event["type"]]:
                    log.info("skipping events of type %s (not billed here)", event["type"])
                self.skipped_types[event["type"]] += 1
                return
            validator = self.schemas.for_event(event["type"], event["dataschema"])
            problems = _problems(validator, event["data"], "data")
            if problems:
                raise Rejected(f"{event['type']} does not match {event['dataschema']}: {problems}")
            try:
                entry = entry_of(event)
            except (KeyError, TypeError, ValueError) as exc:
                raise Rejected(f"{event['type']} without what billing needs: {exc!r}") from exc
        except Rejected as exc:
            log.error("parked %s: %s", where, exc)
            self.parking.park(record, str(exc), "rejected")
            self.counts["rejected"] += 1
            return
        except Unsupported as exc:
            log.warning("skipped %s: %s; parked for a replay once the schema is here", where, exc)
            self.parking.park(record, str(exc), "unsupported")
            self.counts["unsupported"] += 1
            return
        if self.ledger.add(entry, record):
            self.emit(entry.line())
            self.counts[entry.kind] += 1
        else:
            log.info("duplicate event %s at %s: already in the ledger", entry.event_id, where)
            self.counts["duplicates"] += 1


# ---------------------------------------------------------------------------
# The consumer loop


class Assignment(ConsumerRebalanceListener):
    """Remembers when partitions were last assigned (the idle clock starts there)."""

    def __init__(self) -> None:
        self.assigned_at: float | None = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # nothing to flush: offsets are committed right after each batch is handled
        if revoked:
            log.info("partitions revoked: %s", sorted((tp.topic, tp.partition) for tp in revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned: %s", sorted((tp.topic, tp.partition) for tp in assigned))
        self.assigned_at = time.monotonic()


async def commit(consumer: AIOKafkaConsumer, handled: dict[TopicPartition, int]) -> None:
    """Commit the offsets after the handled records. A failed commit loses nothing:
    the records come again and the ledger recognises them."""
    if not handled:
        return
    try:
        await consumer.commit(dict(handled))
    except (CommitFailedError, KafkaError) as exc:
        log.warning("commit failed (the records will be delivered again): %r", exc)
    handled.clear()


async def run(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    ledger = Ledger(args.db)
    parking = Parking(args.rejected or args.db.with_name(args.db.name + ".rejected.jsonl"))
    subscriber = Subscriber(Schemas(args.schemas), ledger, parking, emit=_print_line)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a new group starts at the beginning of the topic
        fetch_max_wait_ms=args.fetch_max_wait_ms,
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        rebalance_timeout_ms=args.rebalance_timeout_ms,
    )
    assignment = Assignment()
    consumer.subscribe([args.topic], listener=assignment)
    status = 0
    started = time.monotonic()
    log.info("subscribing to %s as group %s on %s", args.topic, args.group, args.bootstrap)
    await consumer.start()
    try:
        last_record = time.monotonic()
        handled: dict[TopicPartition, int] = {}
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    subscriber.handle(record)
                    handled[tp] = record.offset + 1
                    if stop.is_set():  # finish the record in hand, then stop
                        break
                if stop.is_set():
                    break
            if batches:
                last_record = time.monotonic()
            await commit(consumer, handled)
            if args.until_idle is None:
                continue
            now = time.monotonic()
            if assignment.assigned_at is None:
                if now - started > max(JOIN_DEADLINE_S, args.until_idle):
                    log.error("no partitions of %s assigned; giving up", args.topic)
                    status = 1
                    break
            elif now - max(last_record, assignment.assigned_at) >= args.until_idle:
                log.info("no new records for %.1f s; exiting", args.until_idle)
                break
        await commit(consumer, handled)
    finally:
        await consumer.stop()  # leaves the group, so its partitions move on at once
        ledger.close()
    summary = dict(subscriber.counts) | {"skipped_types": dict(subscriber.skipped_types)}
    log.info("stopped: %s", json.dumps(summary, sort_keys=True))
    return status


def _print_line(line: str) -> None:
    print(line, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Example billing subscriber of clinic.visits (see examples/README.md).",
        epilog=(
            "The consumer defaults suit Apache Kafka. For the embedded Tansu broker of "
            "`make run` use --fetch-max-wait-ms 25 --rebalance-timeout-ms 2000 "
            "--session-timeout-ms 6000 --heartbeat-interval-ms 1000: Tansu does not wake "
            "a waiting fetch when data arrives, and its group joins wait on these timeouts."
        ),
    )
    parser.add_argument("--bootstrap", required=True, metavar="HOST:PORT", help="the broker")
    parser.add_argument("--group", default="billing-example", help="consumer group id")
    parser.add_argument(
        "--db", type=Path, required=True, metavar="PATH", help="SQLite file of the ledger"
    )
    parser.add_argument(
        "--schemas",
        type=Path,
        default=DEFAULT_SCHEMAS,
        metavar="DIR",
        help="the published schemas (default: the repository's schemas/)",
    )
    parser.add_argument(
        "--rejected",
        type=Path,
        metavar="PATH",
        help="JSONL file of parked records (default: the db path + .rejected.jsonl)",
    )
    parser.add_argument("--topic", default=TOPIC, help=argparse.SUPPRESS)
    parser.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit after this many seconds without new records (tests, batch runs)",
    )
    # defaults: the Kafka client's own; the epilog says what the embedded broker needs
    tuning = parser.add_argument_group("consumer tuning (defaults: the Kafka client's own)")
    tuning.add_argument(
        "--fetch-max-wait-ms", type=int, default=500, metavar="MS", help="fetch long-poll"
    )
    tuning.add_argument(
        "--rebalance-timeout-ms", type=int, default=10_000, metavar="MS", help="group rebalance"
    )
    tuning.add_argument(
        "--session-timeout-ms", type=int, default=10_000, metavar="MS", help="group session"
    )
    tuning.add_argument(
        "--heartbeat-interval-ms", type=int, default=3_000, metavar="MS", help="group heartbeat"
    )
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
