"""Delivery channels: e-mail (SMTP), SMS (a Twilio-compatible REST API), a signed
webhook, and the console/file outbox (development, and what tests read).

A message that does not go out raises a ``SendError``: ``TransientSendError`` when
trying again later may work, ``PermanentSendError`` when it cannot. Its ``reason``
names the failure (SMTP code and stage, HTTP status, provider error code) and
never the recipient or the text, so it can be logged and published as is
(DESIGN.md "Guarantees": minimum necessary).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, formatdate
from pathlib import Path
from time import time
from typing import Any, Protocol, cast, runtime_checkable

import aiosmtplib
import httpx

from services.notifier.smtp_pool import SmtpPool
from shared.settings import NotifierSettings

log = logging.getLogger(__name__)


class SendError(Exception):
    """A message did not go out; ``reason`` is safe to log and to put in an event."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientSendError(SendError):
    """Trying again later may work: connection refused or reset, a timeout, SMTP 4xx,
    HTTP 408/429/5xx. ``retry_after_s`` is the server's own hint, when it gave one.
    ``ambiguous``: the message had gone out when the connection failed or timed out,
    and no answer came, so the provider may have taken it (services/notifier/attempts.py
    says what happens then)."""

    def __init__(
        self, reason: str, *, retry_after_s: float | None = None, ambiguous: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s
        self.ambiguous = ambiguous


class PermanentSendError(SendError):
    """Trying again cannot help: SMTP 5xx (550 unknown mailbox), HTTP 4xx other than
    408/429 (Twilio 21211 invalid number), no usable recipient address."""


@dataclass(frozen=True)
class OutboundMessage:
    notification_id: str
    channel: str
    to: str  # the address on that channel: e-mail address, E.164 number, client id
    subject: str
    body: str
    sent_at: str  # ISO 8601, on the shared clock
    client_id: str = ""
    kind: str = ""
    location_id: str = ""


@dataclass(frozen=True)
class Accepted:
    """The provider took the message; ``ref`` is its own id for it, when it gives one
    (an SMS's message SID; an e-mail's Message-ID)."""

    ref: str | None = None


# Awaited by a channel at the last moment before it hands a message over (connected,
# the message built): the dispatcher records the attempt there, so a crash before it
# leaves nothing sent, and one after it an attempt whose outcome is known to be unknown.
# If it raises, nothing is sent.
Begin = Callable[[], Awaitable[None]]


async def _begun(begin: Begin | None) -> None:
    if begin is not None:
        await begin()


class Channel(Protocol):
    channel: str
    # whether the provider takes a repeat of one message (the same notification id) as
    # that message again, never as a second one: then a send of unknown outcome may be
    # repeated
    dedupes_repeats: bool

    async def deliver(self, message: OutboundMessage, *, begin: Begin | None = None) -> Accepted:
        """Hand ``message`` over; raises a ``SendError`` subclass when it did not go."""


class ConsoleOutbox:
    """One JSON line per message in a file; the log line names the message, not its text."""

    channel = "console"
    dedupes_repeats = False

    def __init__(self, path: Path) -> None:
        self.path = path

    async def deliver(self, message: OutboundMessage, *, begin: Begin | None = None) -> Accepted:
        await _begun(begin)
        await asyncio.to_thread(self._append, message)
        log.info("outbox: %s (%s) written to %s", message.notification_id, message.kind, self.path)
        return Accepted()

    async def aclose(self) -> None:
        return None

    def _append(self, message: OutboundMessage) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(asdict(message)) + "\n")


class EmailChannel:
    """E-mail over SMTP through a pool of open sessions (services/notifier/smtp_pool.py):
    a message reuses a session another one opened, instead of connecting, greeting,
    negotiating TLS and logging in for each."""

    channel = "email"
    dedupes_repeats = False  # receiving systems do not reliably drop a repeated Message-ID

    def __init__(self, settings: NotifierSettings) -> None:
        if not settings.smtp_host:
            raise ValueError("the e-mail channel needs NOTIFIER_SMTP_HOST")
        self.host = settings.smtp_host
        self.settings = settings
        self.sender = Address(
            display_name=settings.email_from_name or "", addr_spec=settings.email_from
        )
        name = settings.email_from_name or ""
        self._from_header = formataddr((name, settings.email_from), charset="utf-8")
        self.pool = SmtpPool(
            self._open,
            size=settings.send_concurrency,
            idle_s=settings.smtp_idle_s,
            messages_per_session=settings.smtp_messages_per_session,
        )

    def compose(self, message: OutboundMessage, to: Address) -> Message:
        """The e-mail for ``message``; its Message-ID is the same on every re-send.

        Built with the classic ``email`` API (a tenth of the CPU of ``EmailMessage``,
        whose header registry parses every header it is given), with non-ASCII text
        in RFC 2047 words and a quoted-printable UTF-8 body either way; a recipient
        address beyond ASCII needs SMTPUTF8 headers, which only ``EmailMessage`` writes."""
        subject = " ".join(message.subject.split())  # one line, always
        email = (
            self._classic(to, subject, message.body)
            if to.addr_spec.isascii()
            else self._modern(to, subject, message.body)
        )
        email["Date"] = _email_date(message.sent_at)
        message_id = self.message_id(message.notification_id)
        # one line, as EmailMessage writes it (the classic API would fold a long one)
        cast(Any, email)["Message-ID"] = (
            message_id if isinstance(email, EmailMessage) else Header(message_id, maxlinelen=998)
        )
        email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
        return email

    def _classic(self, to: Address, subject: str, body: str) -> Message:
        email = MIMEText(body, "plain", cast(Any, _UTF8_QP))  # the stdlib takes a Charset
        headers = cast(Any, email)  # and a Header as a value, where its stubs say str
        headers["From"] = self._from_header
        headers["To"] = to.addr_spec
        headers["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")
        return email

    def _modern(self, to: Address, subject: str, body: str) -> Message:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = to
        email["Subject"] = subject
        email.set_content(body, charset="utf-8", cte="quoted-printable")
        return email

    def message_id(self, notification_id: str) -> str:
        """The notification's Message-ID: derived from its id, so a copy is recognisable."""
        token = re.sub(r"[^A-Za-z0-9._-]", "-", notification_id) or "unnamed"
        return f"<notification.{token}@{self.sender.domain}>"

    async def deliver(self, message: OutboundMessage, *, begin: Begin | None = None) -> Accepted:
        to = _email_address(message.to)
        email = self.compose(message, to)
        # a kept session the server dropped fails before DATA: another one is tried
        # (nothing went out), at most every kept one and then a fresh one
        for _ in range(self.settings.send_concurrency + 1):
            if await self._send(email, to.addr_spec, begin):
                break
        log.info("email: %s accepted by %s", message.notification_id, self.host)
        return Accepted(ref=str(email["Message-ID"]))

    async def _send(self, email: Message, recipient: str, begin: Begin | None) -> bool:
        """One try over one session: True when sent, False when a kept session turned
        out to be dropped before anything went out; raises a ``SendError`` otherwise."""
        timeout = self.settings.smtp_timeout_s
        client: _SmtpClient | None = None
        try:
            async with self.pool.session(timeout_s=timeout) as smtp:
                client = cast(_SmtpClient, smtp)
                client.before_data, client.data_started = begin, False
                async with asyncio.timeout(timeout):
                    # who from and to, as given: not parsed back out of the headers
                    await client.send_message(
                        email, sender=self.sender.addr_spec, recipients=[recipient]
                    )
                client.messages += 1
            return True
        except Exception as exc:
            sending = client is not None and client.data_started
            kept = client is not None and client.messages > 0
            if kept and not sending and isinstance(exc, _DROPPED):
                return False
            failure = _smtp_failure(exc, sending=sending)
            if failure is exc:
                raise
            # a server's reply text can quote the address: only connection failures chain
            raise failure from (exc if isinstance(exc, TimeoutError | OSError) else None)

    async def _open(self) -> aiosmtplib.SMTP:
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        smtp = _SmtpClient(
            hostname=self.host,
            port=s.smtp_port,
            username=s.smtp_username or None,
            password=password if s.smtp_username else None,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=s.smtp_timeout_s,
        )
        await smtp.connect()
        return smtp

    async def aclose(self) -> None:
        await self.pool.aclose()


class _SmtpClient(aiosmtplib.SMTP):
    """aiosmtplib's client, awaiting ``before_data`` once the server took the sender
    and the recipient and before the message itself goes (DATA): the attempt is
    recorded there, as late as it can be. ``data_started``: from then on, a lost
    connection or a timeout leaves the message's fate unknown."""

    before_data: Begin | None = None
    data_started = False
    messages = 0  # sent over this session so far

    async def data(self, message: str | bytes, *args: Any, **kwargs: Any) -> Any:
        await _begun(self.before_data)
        self.data_started = True
        return await super().data(message, *args, **kwargs)


_DROPPED = (aiosmtplib.SMTPServerDisconnected, ConnectionError)


def _smtp_failure(exc: Exception, *, sending: bool) -> Exception:
    """aiosmtplib's exception as a ``SendError`` (anything else as it is). ``sending``:
    the message was on its way, so a lost connection or a timeout leaves its fate
    unknown (a reply code does not: the server said no)."""
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # the server's text and the exception name the address: neither is kept
        codes = [refused.code for refused in exc.recipients]
        return _smtp_reply(min(codes, default=550), "recipient")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _smtp_reply(exc.code, _SMTP_STAGES.get(type(exc), "reply"))
    if isinstance(exc, TimeoutError):  # aiosmtplib's own timeouts are TimeoutErrors too
        return TransientSendError("smtp: timed out", ambiguous=sending)
    if isinstance(exc, OSError | aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError):
        reason = f"smtp: connection failed ({type(exc).__name__})"
        return TransientSendError(reason, ambiguous=sending)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentSendError("smtp: server cannot take a non-ASCII address")
    if isinstance(exc, aiosmtplib.SMTPException):
        # STARTTLS or AUTH required by our settings but not offered: no retry can help
        missing = next((ext for ext in ("STARTTLS", "AUTH") if ext in exc.message), None)
        if missing is not None:
            return PermanentSendError(f"smtp: server offers no {missing}")
        return TransientSendError(f"smtp: {type(exc).__name__}")
    return exc


_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP

_SMTP_STAGES: Mapping[type[Exception], str] = {
    aiosmtplib.SMTPConnectResponseError: "connect",
    aiosmtplib.SMTPHeloError: "helo",
    aiosmtplib.SMTPAuthenticationError: "auth",
    aiosmtplib.SMTPSenderRefused: "sender",
    aiosmtplib.SMTPRecipientRefused: "recipient",
    aiosmtplib.SMTPDataError: "data",
}


def _smtp_reply(code: int, stage: str) -> SendError:
    reason = f"smtp: {code} at {stage}"
    return PermanentSendError(reason) if 500 <= code < 600 else TransientSendError(reason)


def _email_address(to: str) -> Address:
    try:
        address = Address(addr_spec=to.strip())
    except (ValueError, IndexError, HeaderParseError):
        raise PermanentSendError("email: no valid recipient address") from None
    if not address.username or not address.domain:
        raise PermanentSendError("email: no valid recipient address")
    return address


def _email_date(sent_at: str) -> str:
    try:
        when = datetime.fromisoformat(sent_at)
    except ValueError:
        return formatdate(usegmt=True)
    return format_datetime(when) if when.tzinfo else formatdate(usegmt=True)


class SmsChannel:
    """Twilio's Messages API (or one that answers like it), one HTTP client per channel."""

    channel = "sms"
    dedupes_repeats: bool

    def __init__(
        self, settings: NotifierSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        sid, token = settings.sms_account_sid, settings.sms_auth_token
        sender = settings.sms_messaging_service_sid or settings.sms_from
        if not (sid and token and token.get_secret_value() and sender):
            raise ValueError("the SMS channel needs an account SID, an auth token and a sender")
        self.path = f"/2010-04-01/Accounts/{sid}/Messages.json"
        # the same on every message: who sends, and where delivery reports go
        self.fixed_fields = (
            {"MessagingServiceSid": sender}
            if settings.sms_messaging_service_sid
            else {"From": sender}
        )
        if settings.sms_status_callback_url:
            self.fixed_fields["StatusCallback"] = settings.sms_status_callback_url
        # a provider that takes an idempotency key sends a repeat of one message once
        self.idempotency_header = settings.sms_idempotency_header
        self.dedupes_repeats = bool(self.idempotency_header)
        self.client = httpx.AsyncClient(
            base_url=settings.sms_base_url,
            auth=httpx.BasicAuth(sid, token.get_secret_value()),
            timeout=settings.sms_timeout_s,
            headers={"Accept": "application/json"},
            transport=transport,
        )

    async def deliver(self, message: OutboundMessage, *, begin: Begin | None = None) -> Accepted:
        if not message.to.strip():
            raise PermanentSendError("sms: no recipient number")
        form = {"To": message.to.strip(), **self.fixed_fields, "Body": message.body}
        headers = (
            {self.idempotency_header: message.notification_id} if self.idempotency_header else None
        )
        await _begun(begin)
        response = await _post("sms", self.client, self.path, data=form, headers=headers)
        answer = _json_object(response)
        if not response.is_success:
            raise _http_failure("sms", response, answer.get("code"))
        sid = answer.get("sid")
        log.info("sms: %s accepted as %s (%s)", message.notification_id, sid, answer.get("status"))
        return Accepted(ref=sid if isinstance(sid, str) else None)

    async def aclose(self) -> None:
        await self.client.aclose()


class WebhookChannel:
    """POSTs each message as JSON signed like ``verify_webhook`` checks it."""

    channel = "webhook"
    dedupes_repeats = True  # the receiver has the notification id (and Idempotency-Key)

    def __init__(
        self,
        settings: NotifierSettings,
        *,
        wall_clock: Callable[[], float] = time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not (settings.webhook_url and settings.webhook_secret):
            raise ValueError("the webhook channel needs NOTIFIER_WEBHOOK_URL and its secret")
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret.get_secret_value()
        # real time, not the shared clock: the receiver checks it against its own
        self.wall_clock = wall_clock
        self.client = httpx.AsyncClient(timeout=settings.webhook_timeout_s, transport=transport)

    async def deliver(self, message: OutboundMessage, *, begin: Begin | None = None) -> Accepted:
        payload = {
            "notification_id": message.notification_id,
            "client_id": message.client_id,
            "location_id": message.location_id,
            "kind": message.kind,
            "subject": message.subject,
            "body": message.body,
            "sent_at": message.sent_at,
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = str(int(self.wall_clock()))
        headers = {
            "Content-Type": "application/json",
            "X-Clinicflow-Timestamp": timestamp,
            "X-Clinicflow-Signature": webhook_signature(self.secret, timestamp, body),
            "Idempotency-Key": message.notification_id,  # the same on every re-send
        }
        await _begun(begin)
        response = await _post("webhook", self.client, self.url, content=body, headers=headers)
        if not response.is_success:
            raise _http_failure("webhook", response, None)
        return Accepted()

    async def aclose(self) -> None:
        await self.client.aclose()


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``{timestamp}.{body}`` under ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now: float,
    tolerance_s: float = 300,
) -> bool:
    """For receivers: the signature is ours, and the timestamp (Unix seconds) is within
    ``tolerance_s`` of ``now`` (Unix seconds), so a captured request cannot be replayed
    later."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent) > tolerance_s:
        return False
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)


async def _post(
    what: str,
    client: httpx.AsyncClient,
    url: str,
    *,
    data: Mapping[str, str] | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    try:
        return await client.post(url, data=data, content=content, headers=headers)
    except httpx.TransportError as exc:
        # failing to connect leaves nothing sent; failing after the request went out
        # leaves it unknown whether the server acted on it
        ambiguous = not isinstance(exc, _NOT_SENT)
        reason = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
        if reason == "connection failed":
            reason += f" ({type(exc).__name__})"
        raise TransientSendError(f"{what}: {reason}", ambiguous=ambiguous) from exc


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _http_failure(what: str, response: httpx.Response, provider_code: object) -> SendError:
    status = response.status_code
    # the provider's message can quote the number; only its numeric code is kept
    code = f", error {provider_code}" if isinstance(provider_code, int) else ""
    reason = f"{what}: HTTP {status}{code}"
    if status in (408, 429) or status >= 500:
        return TransientSendError(reason, retry_after_s=_retry_after(response))
    return PermanentSendError(reason)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None  # absent, or an HTTP date: the caller's backoff decides


def _json_object(response: httpx.Response) -> dict[str, object]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def channels_from(settings: NotifierSettings) -> dict[str, Channel]:
    """The configured channels: the console outbox always, the others when set up."""
    channels: dict[str, Channel] = {"console": ConsoleOutbox(settings.outbox_path)}
    if settings.email_configured:
        channels["email"] = EmailChannel(settings)
    if settings.sms_configured:
        channels["sms"] = SmsChannel(settings)
    if settings.webhook_configured:
        channels["webhook"] = WebhookChannel(settings)
    return channels


@runtime_checkable
class _Closable(Protocol):
    async def aclose(self) -> None: ...


async def close_channels(channels: Mapping[str, Channel]) -> None:
    """Release what the channels hold open (HTTP connection pools)."""
    for channel in channels.values():
        if isinstance(channel, _Closable):
            await channel.aclose()
