"""The security headers every answer carries: most carry client data (a plan, a
visit, an intake), so nothing is cached, sniffed, framed or sent on as a referrer.

HTML gets a Content-Security-Policy that allows the page's own scripts, styles and
calls only (the dashboard, the check-in page); FastAPI's API docs pages load Swagger
UI and ReDoc from their CDN with an inline start-up script, so they get a policy
that allows exactly that. Anything else is data, and may run or embed nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

BASE: Final = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
)
NO_STORE: Final = ("cache-control", "no-store")
DATA_POLICY: Final = "default-src 'none'; frame-ancestors 'none'"
PAGE_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
DOCS_CDN: Final = "https://cdn.jsdelivr.net"
DOCS_POLICY: Final = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {DOCS_CDN}; "
    f"style-src 'self' 'unsafe-inline' {DOCS_CDN}; img-src 'self' data: https:; "
    f"worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_PATHS: Final = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})


def security_headers(
    path: str, content_type: str | None, present: Collection[str]
) -> list[tuple[str, str]]:
    """The headers to add to an answer for ``path`` of ``content_type``; a header the
    route set itself (``present``, lower-case names) is left as the route set it."""
    wanted = [*BASE, NO_STORE, ("content-security-policy", _policy(path, content_type))]
    return [(name, value) for name, value in wanted if name not in present]


def _policy(path: str, content_type: str | None) -> str:
    if not (content_type or "").lower().startswith("text/html"):
        return DATA_POLICY
    return DOCS_POLICY if path in DOCS_PATHS else PAGE_POLICY
