"""Prometheus metrics shared by every service (labels carry the service name)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
HANDLER_SECONDS = Histogram(
    "clinicflow_handler_seconds", "Time to handle one record", ["service", "type"]
)
HTTP_REQUESTS = Counter(
    "clinicflow_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "clinicflow_http_request_seconds", "HTTP request latency", ["service", "method", "route"]
)
