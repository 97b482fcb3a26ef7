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
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formatdate
from pathlib import Path
from time import time
from typing import Protocol, runtime_checkable

import aiosmtplib
import httpx

from shared.settings import NotifierSettings

log = logging.getLogger(__name__)


class SendError(Exception):
    """A message did not go out; ``reason`` is safe to log and to put in an event."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientSendError(SendError):
    """Trying again later may work: connection refused or reset, a timeout, SMTP 4xx,
    HTTP 408/429/5xx. ``retry_after_s`` is the server's own hint, when it gave one."""

    def __init__(self, reason: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


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


class Channel(Protocol):
    channel: str

    async def deliver(self, message: OutboundMessage) -> None:
        """Hand ``message`` over; raises a ``SendError`` subclass when it did not go."""


class ConsoleOutbox:
    """One JSON line per message in a file; the log line names the message, not its text."""

    channel = "console"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def deliver(self, message: OutboundMessage) -> None:
        await asyncio.to_thread(self._append, message)
        log.info("outbox: %s (%s) written to %s", message.notification_id, message.kind, self.path)

    async def aclose(self) -> None:
        return None

    def _append(self, message: OutboundMessage) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(asdict(message)) + "\n")


class EmailChannel:
    """One SMTP connection per message (reminders are few; nothing idles open)."""

    channel = "email"

    def __init__(self, settings: NotifierSettings) -> None:
        if not settings.smtp_host:
            raise ValueError("the e-mail channel needs NOTIFIER_SMTP_HOST")
        self.host = settings.smtp_host
        self.settings = settings
        self.sender = Address(
            display_name=settings.email_from_name or "", addr_spec=settings.email_from
        )

    def compose(self, message: OutboundMessage) -> EmailMessage:
        """The e-mail for ``message``; its Message-ID is the same on every re-send."""
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = _email_address(message.to)
        email["Subject"] = " ".join(message.subject.split())  # one line, always
        email["Date"] = _email_date(message.sent_at)
        token = re.sub(r"[^A-Za-z0-9._-]", "-", message.notification_id) or "unnamed"
        email["Message-ID"] = f"<notification.{token}@{self.sender.domain}>"
        email["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
        email.set_content(message.body, charset="utf-8", cte="quoted-printable")
        return email

    async def deliver(self, message: OutboundMessage) -> None:
        email = self.compose(message)
        s = self.settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            async with asyncio.timeout(s.smtp_timeout_s):
                await aiosmtplib.send(
                    email,
                    hostname=self.host,
                    port=s.smtp_port,
                    username=s.smtp_username or None,
                    password=password if s.smtp_username else None,
                    use_tls=s.smtp_security == "tls",
                    start_tls=s.smtp_security == "starttls",
                    timeout=s.smtp_timeout_s,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # the server's text and the exception name the address: neither is kept
            codes = [refused.code for refused in exc.recipients]
            raise _smtp_reply(min(codes, default=550), "recipient") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _smtp_reply(exc.code, _SMTP_STAGES.get(type(exc), "reply")) from None
        except TimeoutError as exc:  # aiosmtplib's own timeouts are TimeoutErrors too
            raise TransientSendError("smtp: timed out") from exc
        except (OSError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError) as exc:
            raise TransientSendError(f"smtp: connection failed ({type(exc).__name__})") from exc
        except aiosmtplib.SMTPNotSupported:
            raise PermanentSendError("smtp: server cannot take a non-ASCII address") from None
        except aiosmtplib.SMTPException as exc:
            # STARTTLS or AUTH required by our settings but not offered: no retry can help
            missing = next((ext for ext in ("STARTTLS", "AUTH") if ext in exc.message), None)
            if missing is not None:
                raise PermanentSendError(f"smtp: server offers no {missing}") from None
            raise TransientSendError(f"smtp: {type(exc).__name__}") from None
        log.info("email: %s accepted by %s", message.notification_id, self.host)

    async def aclose(self) -> None:
        return None


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
        self.client = httpx.AsyncClient(
            base_url=settings.sms_base_url,
            auth=httpx.BasicAuth(sid, token.get_secret_value()),
            timeout=settings.sms_timeout_s,
            headers={"Accept": "application/json"},
            transport=transport,
        )

    async def deliver(self, message: OutboundMessage) -> None:
        if not message.to.strip():
            raise PermanentSendError("sms: no recipient number")
        form = {"To": message.to.strip(), **self.fixed_fields, "Body": message.body}
        response = await _post("sms", self.client, self.path, data=form)
        answer = _json_object(response)
        if not response.is_success:
            raise _http_failure("sms", response, answer.get("code"))
        log.info(
            "sms: %s accepted as %s (%s)",
            message.notification_id,
            answer.get("sid"),
            answer.get("status"),
        )

    async def aclose(self) -> None:
        await self.client.aclose()


class WebhookChannel:
    """POSTs each message as JSON signed like ``verify_webhook`` checks it."""

    channel = "webhook"

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

    async def deliver(self, message: OutboundMessage) -> None:
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
        }
        response = await _post("webhook", self.client, self.url, content=body, headers=headers)
        if not response.is_success:
            raise _http_failure("webhook", response, None)

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
    except httpx.TimeoutException as exc:
        raise TransientSendError(f"{what}: timed out") from exc
    except httpx.TransportError as exc:
        raise TransientSendError(f"{what}: connection failed ({type(exc).__name__})") from exc


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
