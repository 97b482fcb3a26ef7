"""The security headers: every answer gets them, HTML its page policy, the API
docs theirs, and a header a route set itself is left alone."""

from __future__ import annotations

from shared.headers import DATA_POLICY, DOCS_POLICY, PAGE_POLICY, security_headers


def test_data_gets_no_store_nosniff_no_referrer_no_framing_and_runs_nothing() -> None:
    headers = dict(security_headers("/v1/clients/c-1", "application/json", set()))
    assert headers == {
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
        "cache-control": "no-store",
        "content-security-policy": DATA_POLICY,
    }
    assert "frame-ancestors 'none'" in DATA_POLICY
    assert dict(security_headers("/metrics", None, set()))["content-security-policy"] == DATA_POLICY


def test_pages_get_a_self_only_policy_and_the_docs_theirs() -> None:
    page = dict(security_headers("/", "text/html; charset=utf-8", set()))
    assert page["content-security-policy"] == PAGE_POLICY
    assert "'unsafe-inline'" not in PAGE_POLICY and "frame-ancestors 'none'" in PAGE_POLICY
    docs = dict(security_headers("/docs", "text/html; charset=utf-8", set()))
    assert docs["content-security-policy"] == DOCS_POLICY


def test_a_header_the_route_set_is_kept() -> None:
    added = dict(security_headers("/v1/stream", "text/event-stream", {"cache-control"}))
    assert "cache-control" not in added and added["x-frame-options"] == "DENY"
