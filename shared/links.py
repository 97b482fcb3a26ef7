"""Signed links: what a client opens from a message (a visit's calendar file, a
waitlist offer, a check-in page) carries a signature instead of an API key.

A signature is ``<expiry>.<mac>``: the expiry in Unix seconds, and an HMAC under
``CLINICFLOW_LINK_SECRET`` of what the link names together with that expiry. So it
cannot be forged for another visit nor made to live longer, and rotating the secret
revokes every link at once. Links expire ``link_valid_after_visit`` (chain policy,
30 days by default) after the visit they belong to. Signatures of the earlier form
(a MAC without an expiry) are refused: they would never expire, and the next message
carries a fresh link.

Pure: the caller passes the time (the shared clock) and the visit's state."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

# states of a visit in which its signed links may no longer act (confirm, cancel,
# reschedule, accept); its calendar file still opens and shows it cancelled
CLOSED_TO_ACTIONS = frozenset({"cancelled"})


def sign(secret: str, *names: str, expires: datetime) -> str:
    """The signature of a link to ``names`` (e.g. ``"visit", visit_id``), valid until
    ``expires`` (rounded down to the second)."""
    expiry = int(expires.timestamp())
    return f"{expiry}.{_mac(secret, expiry, names)}"


def verify(secret: str, signature: str, *names: str, now: datetime) -> bool:
    """Whether ``signature`` opens what ``names`` name at ``now``. Any text may come in
    (it is a query parameter); anything that is not a current signature is False."""
    expiry_text, dot, mac = signature.partition(".")
    if not dot or not expiry_text.isascii() or not expiry_text.isdigit():
        return False
    expiry = int(expiry_text[:16])  # a longer number is no expiry we issue
    if expiry <= now.timestamp():
        return False
    expected = _mac(secret, expiry, names).encode()
    return hmac.compare_digest(expected, mac.encode("utf-8", "surrogateescape"))


def may_act(visit_state: str | None) -> bool:
    """Whether a signed link may still change a visit in ``visit_state``."""
    return visit_state not in CLOSED_TO_ACTIONS


def _mac(secret: str, expiry: int, names: tuple[str, ...]) -> str:
    message = "\x1f".join((*names, str(expiry))).encode("utf-8", "surrogateescape")
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()
