"""Replies clients text back (pure: no I/O, no clock).

- ``valid_twilio_signature``: Twilio signs each request it posts to us with
  ``X-Twilio-Signature``, the base64 HMAC-SHA1, under the account's auth token, of
  the full URL followed by every POST parameter's name and value, sorted by name
  (https://www.twilio.com/docs/usage/security#validating-requests).
- ``InboundSms``: the fields of that form we use.
- ``classify``: what the reply asks for. The whole message, trimmed of spaces and
  surrounding punctuation and compared without case or accents, must be one of
  the keywords below; "please stop" is not STOP (the carriers' rule is the same
  exact match, so we never treat as an opt-out what the carrier did not).
  Anything else is ``other``: a text for the front desk to read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from shared.vocabulary import ReplyIntent

# Twilio's default opt-out, opt-in and help keywords (REVOKE and OPTOUT since May 2025,
# for the FCC's opt-out rule), and their Spanish equivalents. The provider blocks the
# number and confirms on its own for its English opt-out words; we stop every SMS too.
# CANCEL is an opt-out (carriers treat it so), not a request to cancel a visit: a client
# who texts it must not keep getting texts because we read it another way.
STOP_WORDS: Final = frozenset(
    {
        *("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"),
        *("parar", "alto"),
    }
)
START_WORDS: Final = frozenset({"start", "yes", "unstop", "si", "comenzar", "iniciar"})
HELP_WORDS: Final = frozenset({"help", "info", "ayuda"})
# the reminder's "reply Y or C to confirm"; YES stays START, the carriers' opt-in word
CONFIRM_WORDS: Final = frozenset({"y", "c", "confirm", "confirmar"})

# a pain score 0-10: "7", "7/10", "pain 4", "dolor: 4/10"
_SCORE: Final = re.compile(r"(?:(?:pain|dolor)\s*:?\s*)?(\d{1,2})(?:\s*/\s*10)?")
# trimmed from both ends; not "-" or "+", so "-1" stays a negative number
_EDGES: Final = " \t\r\n.,;:!?¡¿\"'()[]*"

CommandKind: TypeAlias = ReplyIntent


@dataclass(frozen=True)
class Command:
    kind: CommandKind
    score: int | None = None  # 0-10, only with kind "score"


def classify(body: str) -> Command:
    """What a client's reply asks for (see the word lists above)."""
    text = _plain(body).strip(_EDGES)
    if text in STOP_WORDS:
        return Command("stop")
    if text in START_WORDS:
        return Command("start")
    if text in HELP_WORDS:
        return Command("help")
    if text in CONFIRM_WORDS:
        return Command("confirm")
    matched = _SCORE.fullmatch(text)
    if matched and 0 <= int(matched.group(1)) <= 10:
        return Command("score", int(matched.group(1)))
    return Command("other")


def _plain(text: str) -> str:
    """Case-folded, without accents ("Sí" -> "si")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class InboundSms(BaseModel):
    """The form Twilio posts for a text a client sent us (other fields are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    sender: str = Field(alias="From", min_length=1)
    recipient: str = Field(alias="To", min_length=1)
    body: str = Field(default="", alias="Body")
    # the provider's id of the message ("SM" and 32 hex digits at Twilio): a reply's id,
    # so a redelivered webhook names the reply it named the first time
    message_sid: str = Field(
        alias="MessageSid", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$"
    )
    account_sid: str = Field(default="", alias="AccountSid")

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> InboundSms:
        """Raises pydantic's ``ValidationError`` when From, To or MessageSid is missing."""
        return cls.model_validate(dict(form))


Params: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]


def twilio_signature(auth_token: str, url: str, params: Params) -> str:
    """Twilio's ``X-Twilio-Signature`` for a POST of ``params`` to ``url``.

    ``params`` is the form as a mapping, or as (name, value) pairs when a name
    repeats; each name's values are sorted too, as Twilio's own libraries do."""
    pairs = params.items() if isinstance(params, Mapping) else params
    payload = url + "".join(name + value for name, value in sorted(set(pairs)))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_twilio_signature(auth_token: str, url: str, params: Params, signature: str) -> bool:
    """Whether ``signature`` is Twilio's for this request. Like Twilio's libraries, the
    URL is also tried with its scheme's default port written out or left out (Twilio
    signs with one or the other); any other port must match."""
    pairs = list(params.items() if isinstance(params, Mapping) else params)
    found = False
    for candidate in _url_variants(url):
        expected = twilio_signature(auth_token, candidate, pairs)
        # compare every variant, so the time taken does not tell which one matched
        found |= hmac.compare_digest(expected.encode(), signature.encode())
    return found


def _url_variants(url: str) -> list[str]:
    """``url`` as given, and with the scheme's default port written out or left out."""
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    if default_port is None or parts.port not in (None, default_port):
        return [url]
    userinfo, _, _ = parts.netloc.rpartition("@")
    prefix = f"{userinfo}@" if userinfo else ""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    without_port = urlunsplit(parts._replace(netloc=prefix + host))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default_port}"))
    return list(dict.fromkeys([url, without_port, with_port]))
