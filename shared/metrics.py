"""Prometheus metrics shared by every service (labels carry the service name).

The names are part of what operators build on: the Grafana dashboard in
``deploy/grafana``, the alert examples in the README and the ops dashboard read
them. Labels never carry ids of clients, plans or visits, only bounded sets
(services, topics, event types, locations, kinds, channels, statuses).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from shared.envelope import Envelope
from shared.vocabulary import BOOKING_OUTCOMES

EVENTS_CONSUMED = Counter(
    "clinicflow_events_consumed_total",
    "Records consumed, by outcome (handled, ignored, duplicate, deadlettered)",
    ["service", "topic", "type", "outcome"],
)
EVENTS_PRODUCED = Counter(
    "clinicflow_events_produced_total", "Events published", ["service", "topic", "type"]
)
DEADLETTERS = Counter(
    "clinicflow_deadletters_total", "Records sent to clinic.deadletter", ["service", "topic"]
)
DEADLETTERS_UNSENT = Counter(
    "clinicflow_deadletters_unsent_total",
    "Records neither processed nor dead-lettered: the broker refused even the smallest "
    "dead letter (they stay on their topic at their offset, in the log with the reason)",
    ["service", "topic"],
)
HANDLER_SECONDS = Histogram(
    "clinicflow_handler_seconds", "Time to handle one record", ["service", "type"]
)
CONSUMER_LAG = Gauge(
    "clinicflow_consumer_lag",
    "Records on a partition not yet handled by this instance (end offset - next offset)",
    ["service", "topic", "partition"],
)
BOOKINGS = Counter(
    "clinicflow_bookings_total",
    "Visit outcomes published, by location "
    "(booked, rescheduled, waitlisted, offered, cancelled, completed, no_show)",
    ["service", "location", "outcome"],
)
NOTIFICATIONS = Counter(
    "clinicflow_notifications_total",
    "Notification lifecycle events published "
    "(scheduled, sent, failed, cancelled, suppressed), by kind and channel",
    ["service", "location", "kind", "channel", "status"],
)
WAITLIST_SIZE = Gauge(
    "clinicflow_waitlist_size", "Plans waiting for a slot at a location", ["location"]
)
READY = Gauge(
    "clinicflow_ready",
    "1 when the instance's readiness check passes (check=all) and per check "
    "(broker, redis, consuming), else 0; what /readyz answers, for alerting",
    ["service", "check"],
)
OUTBOX_PENDING = Gauge(
    "clinicflow_outbox_pending",
    "Accepted events stored in a service's outbox and not yet acknowledged by the broker",
    ["service"],
)
OUTBOX_REFUSED = Counter(
    "clinicflow_outbox_refused_total",
    "Accepted events the broker refused for good (too large, invalid topic, not authorised); "
    "parked in the service's outbox-refused hash for ops, not retried",
    ["service", "topic"],
)
OUTBOX_OLDEST_S = Gauge(
    "clinicflow_outbox_oldest_seconds",
    "How long the oldest event in a service's outbox has waited for the broker",
    ["service"],
)
REDIS_ROUND_TRIPS = Counter(
    "clinicflow_redis_round_trips_total",
    "Writes to the Redis server that wait for its answer: one command, or one pipeline",
    ["service"],
)
SENDS_UNKNOWN = Counter(
    "clinicflow_notification_outcomes_unknown_total",
    "Sends whose outcome nobody recorded: the sender stopped between starting the send "
    "and recording the provider's answer. Not sent again; failed as outcome_unknown",
    ["service", "channel"],
)
SEND_SECONDS = Histogram(
    "clinicflow_notification_send_seconds",
    "From starting a send to the provider's answer (an accepted message)",
    ["service", "channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SEND_RECORD_SECONDS = Histogram(
    "clinicflow_notification_record_seconds",
    "From the provider's acceptance to its record in Redis: the window in which a kill "
    "leaves a sent message with an unknown outcome",
    ["service", "channel"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
SEND_LAG_SECONDS = Histogram(
    "clinicflow_notification_send_lag_seconds",
    "From a message's due time to its provider's acceptance, on the shared clock",
    ["service", "channel"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
HTTP_REQUESTS = Counter(
    "clinicflow_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "clinicflow_http_request_seconds", "HTTP request latency", ["service", "method", "route"]
)


def published(service: str, topic: str, envelope: Envelope) -> None:
    """Count one event the broker acknowledged, and what it says about bookings
    and messages (by location, kind, channel: never by client)."""
    EVENTS_PRODUCED.labels(service, topic, envelope.type).inc()
    location = envelope.locationid or "unknown"
    outcome = BOOKING_OUTCOMES.get(envelope.type)
    if outcome is not None:
        BOOKINGS.labels(service, location, outcome).inc()
    elif envelope.type.startswith("notification."):
        data = envelope.data
        NOTIFICATIONS.labels(
            service,
            location,
            str(data.get("kind", "unknown")),
            str(data.get("channel", "unknown")),
            envelope.type.removeprefix("notification."),
        ).inc()
