"""Signed links: what a client opens from a message (a visit's calendar file)
carries a signature instead of an API key. The signature is an HMAC of what the
link names under ``CLINICFLOW_LINK_SECRET``, so it cannot be forged for another
visit, and rotating the secret revokes every link at once."""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(secret: str, *names: str) -> str:
    """The signature of a link to ``names`` (e.g. ``"visit", visit_id``)."""
    digest = hmac.new(secret.encode(), "\x1f".join(names).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def verify(secret: str, signature: str, *names: str) -> bool:
    return hmac.compare_digest(sign(secret, *names), signature)
