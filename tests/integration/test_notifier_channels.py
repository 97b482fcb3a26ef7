"""The notifier's delivery channels against real local servers (tests/notifier_fakes.py):
what arrives, and which failures are worth retrying. No broker or Redis needed."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.notifier.channels import (
    ConsoleOutbox,
    EmailChannel,
    OutboundMessage,
    PermanentSendError,
    SendError,
    SmsChannel,
    TransientSendError,
    WebhookChannel,
    channels_from,
    close_channels,
    verify_webhook,
)
from shared.infra import free_port
from shared.settings import NotifierSettings
from tests.notifier_fakes import SmsApiFake, SmtpFake, WebhookReceiver, silent_server

pytestmark = pytest.mark.integration

SECRET = "webhook-secret-for-tests-0123456789"
SPANISH = OutboundMessage(
    notification_id="ntf-7f3a-reminder-1",
    channel="email",
    to="lucia.munoz@example.org",
    subject="Recordatorio: su cita de mañana en Beaverton",
    body="Hola Lucía,\n\nle recordamos su cita del martes a las 10:00. ¿Necesita cambiarla?\n"
    "Señales de alarma: ninguna. Gracias — Clínica Peña",
    sent_at="2027-03-08T17:00:00+00:00",
    client_id="c-42",
    kind="reminder",
    location_id="beaverton",
)
SMS = OutboundMessage(
    notification_id="ntf-7f3a-reminder-2",
    channel="sms",
    to="+15035550142",
    subject="Reminder",
    body="Reminder: your visit Tue 10:00 at Beaverton. Reply STOP to opt out.",
    sent_at="2027-03-08T17:00:00+00:00",
    client_id="c-42",
    kind="reminder",
    location_id="beaverton",
)


@pytest.fixture(autouse=True)
def _no_notifier_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # a developer's exported provider settings must not configure channels here
    for name in list(os.environ):
        if name.startswith("NOTIFIER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox.jsonl"


def settings(outbox: Path, **env: Any) -> NotifierSettings:
    return NotifierSettings(CLINICFLOW_ENV="test", NOTIFIER_OUTBOX_PATH=outbox, **env)


def smtp_settings(outbox: Path, port: int, **env: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "NOTIFIER_SMTP_HOST": "127.0.0.1",
        "NOTIFIER_SMTP_PORT": port,
        "NOTIFIER_SMTP_SECURITY": "none",
        "NOTIFIER_EMAIL_FROM": "recordatorios@clinica.example",
        "NOTIFIER_EMAIL_FROM_NAME": "Clínica Peña",
        **env,
    }
    return settings(outbox, **values)


def sms_settings(outbox: Path, api: SmsApiFake | None = None, **env: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "NOTIFIER_SMS_BASE_URL": api.base_url if api else "http://127.0.0.1:9",
        "NOTIFIER_SMS_ACCOUNT_SID": api.account_sid if api else "AC" + "0" * 32,
        "NOTIFIER_SMS_AUTH_TOKEN": api.auth_token if api else "token-" + "0" * 26,
        "NOTIFIER_SMS_FROM": "+15035550100",
        **env,
    }
    return settings(outbox, **values)


def assert_safe(error: SendError, message: OutboundMessage) -> None:
    """The reason may be logged and published: no recipient, no text."""
    assert error.reason and str(error) == error.reason
    for private in (message.to, message.body, message.subject):
        assert private not in error.reason
    assert message.to.lstrip("+") not in error.reason


# --- e-mail ------------------------------------------------------------------------


async def test_email_arrives_with_its_headers_and_spanish_text_intact(outbox: Path) -> None:
    async with SmtpFake() as smtp:
        channel = EmailChannel(smtp_settings(outbox, smtp.port))
        await channel.deliver(SPANISH)
        await channel.deliver(SPANISH)  # a re-send after a crash
        first, again = await smtp.wait_for_mail(2)

    assert first.mail_from == "recordatorios@clinica.example"
    assert first.rcpt_tos == ["lucia.munoz@example.org"]
    mail = first.message
    assert mail["From"].addresses[0].display_name == "Clínica Peña"
    assert mail["From"].addresses[0].addr_spec == "recordatorios@clinica.example"
    assert mail["To"].addresses[0].addr_spec == "lucia.munoz@example.org"
    assert mail["Subject"] == "Recordatorio: su cita de mañana en Beaverton"
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    assert mail.get_content().rstrip("\n") == SPANISH.body
    assert parsedate_to_datetime(mail["Date"]).isoformat() == SPANISH.sent_at
    assert mail["Auto-Submitted"] == "auto-generated"
    # the same notification carries the same Message-ID, so a re-send is recognisable
    assert mail["Message-ID"] == "<notification.ntf-7f3a-reminder-1@clinica.example>"
    assert again.message["Message-ID"] == mail["Message-ID"]


async def test_email_logs_in_when_credentials_are_set(outbox: Path) -> None:
    async with SmtpFake(credentials=("clinic", "smtp-password")) as smtp:
        good = smtp_settings(
            outbox,
            smtp.port,
            NOTIFIER_SMTP_USERNAME="clinic",
            NOTIFIER_SMTP_PASSWORD="smtp-password",
        )
        await EmailChannel(good).deliver(SPANISH)
        (mail,) = await smtp.wait_for_mail(1)
        assert mail.login == "clinic"

        bad = smtp_settings(
            outbox, smtp.port, NOTIFIER_SMTP_USERNAME="clinic", NOTIFIER_SMTP_PASSWORD="wrong"
        )
        with pytest.raises(PermanentSendError) as refused:
            await EmailChannel(bad).deliver(SPANISH)
    assert refused.value.reason == "smtp: 535 at auth"
    assert_safe(refused.value, SPANISH)


async def test_starttls_required_but_not_offered_is_permanent(outbox: Path) -> None:
    async with SmtpFake() as smtp:  # no TLS there
        channel = EmailChannel(smtp_settings(outbox, smtp.port, NOTIFIER_SMTP_SECURITY="starttls"))
        with pytest.raises(PermanentSendError) as failed:
            await channel.deliver(SPANISH)
        assert smtp.received == []
    assert failed.value.reason == "smtp: server offers no STARTTLS"


async def test_smtp_4xx_is_transient_and_the_next_try_goes_through(outbox: Path) -> None:
    async with SmtpFake() as smtp:
        channel = EmailChannel(smtp_settings(outbox, smtp.port))
        smtp.fail_next(451)
        with pytest.raises(TransientSendError) as failed:
            await channel.deliver(SPANISH)
        assert smtp.received == [] and smtp.refused == [451]
        await channel.deliver(SPANISH)
        await smtp.wait_for_mail(1)
    assert failed.value.reason == "smtp: 451 at data"
    assert_safe(failed.value, SPANISH)


async def test_smtp_550_unknown_mailbox_is_permanent(outbox: Path) -> None:
    async with SmtpFake() as smtp:
        smtp.fail_next(550, at="rcpt")
        with pytest.raises(PermanentSendError) as failed:
            await EmailChannel(smtp_settings(outbox, smtp.port)).deliver(SPANISH)
        assert smtp.received == []
    assert failed.value.reason == "smtp: 550 at recipient"
    assert_safe(failed.value, SPANISH)


async def test_smtp_server_down_is_transient(outbox: Path) -> None:
    channel = EmailChannel(smtp_settings(outbox, free_port()))  # nothing listens there
    with pytest.raises(TransientSendError) as failed:
        await channel.deliver(SPANISH)
    assert failed.value.reason.startswith("smtp: connection failed")
    assert_safe(failed.value, SPANISH)


async def test_smtp_server_that_never_answers_is_a_transient_timeout(outbox: Path) -> None:
    async with silent_server() as port:
        channel = EmailChannel(smtp_settings(outbox, port, NOTIFIER_SMTP_TIMEOUT_S=0.3))
        started = time.monotonic()
        with pytest.raises(TransientSendError) as failed:
            await channel.deliver(SPANISH)
    assert failed.value.reason == "smtp: timed out"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("to", ["", "   ", "client:c-42", "lucia.munoz@", "a@b\r\nBcc: x@y.z"])
async def test_email_without_a_usable_address_is_permanent_and_not_sent(
    outbox: Path, to: str
) -> None:
    message = OutboundMessage(**{**SPANISH.__dict__, "to": to})
    async with SmtpFake() as smtp:
        with pytest.raises(PermanentSendError) as failed:
            await EmailChannel(smtp_settings(outbox, smtp.port)).deliver(message)
        assert smtp.received == []
    assert failed.value.reason == "email: no valid recipient address"


# --- SMS ---------------------------------------------------------------------------


async def test_sms_posts_twilios_form_with_basic_auth(outbox: Path) -> None:
    async with SmsApiFake() as api:
        channel = SmsChannel(
            sms_settings(
                outbox, api, NOTIFIER_SMS_STATUS_CALLBACK_URL="https://clinic.example/sms/status"
            )
        )
        try:
            await channel.deliver(SMS)
        finally:
            await channel.aclose()
        (request,) = await api.wait_for_requests(1)
    assert request.account_sid == api.account_sid
    assert request.auth == (api.account_sid, api.auth_token)
    assert request.form == {
        "To": "+15035550142",
        "From": "+15035550100",
        "Body": SMS.body,
        "StatusCallback": "https://clinic.example/sms/status",
    }
    assert request.status == 201 and api.messages == [request.form]


async def test_sms_sends_the_notification_id_as_the_providers_idempotency_key_when_set(
    outbox: Path,
) -> None:
    async with SmsApiFake() as api:
        plain = SmsChannel(sms_settings(outbox, api))
        keyed = SmsChannel(
            sms_settings(outbox, api, NOTIFIER_SMS_IDEMPOTENCY_HEADER="Idempotency-Key")
        )
        try:
            without = await plain.deliver(SMS)
            with_key = await keyed.deliver(SMS)
        finally:
            await close_channels({"plain": plain, "keyed": keyed})
        first, second = await api.wait_for_requests(2)
    # only a provider that dedupes by the key may be sent a send of unknown outcome again
    assert (plain.dedupes_repeats, keyed.dedupes_repeats) == (False, True)
    assert "idempotency-key" not in first.headers
    assert second.headers["idempotency-key"] == SMS.notification_id
    # the provider's own id for the message is what the record keeps
    assert without.ref and with_key.ref and without.ref != with_key.ref


async def test_sms_through_a_messaging_service_sends_its_sid_instead_of_from(
    outbox: Path,
) -> None:
    async with SmsApiFake() as api:
        channel = SmsChannel(
            sms_settings(
                outbox,
                api,
                NOTIFIER_SMS_FROM=None,
                NOTIFIER_SMS_MESSAGING_SERVICE_SID="MG" + "1" * 32,
            )
        )
        try:
            await channel.deliver(SMS)
        finally:
            await channel.aclose()
    (form,) = api.messages
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form


@pytest.mark.parametrize(("status", "retry_after"), [(429, 30.0), (500, None), (503, None)])
async def test_sms_rate_limit_and_server_errors_are_transient(
    outbox: Path, status: int, retry_after: float | None
) -> None:
    async with SmsApiFake() as api:
        channel = SmsChannel(sms_settings(outbox, api))
        try:
            api.fail_next(status, retry_after=retry_after)
            with pytest.raises(TransientSendError) as failed:
                await channel.deliver(SMS)
            await channel.deliver(SMS)  # the failure was for one request only
        finally:
            await channel.aclose()
    assert failed.value.reason == f"sms: HTTP {status}, error {20000 + status}"
    assert failed.value.retry_after_s == retry_after
    assert [r.status for r in api.requests] == [status, 201]
    assert_safe(failed.value, SMS)


async def test_sms_invalid_number_is_permanent_and_its_reason_does_not_quote_it(
    outbox: Path,
) -> None:
    async with SmsApiFake() as api:
        api.reject_number(SMS.to, code=21211)
        channel = SmsChannel(sms_settings(outbox, api))
        try:
            with pytest.raises(PermanentSendError) as failed:
                await channel.deliver(SMS)
        finally:
            await channel.aclose()
    assert failed.value.reason == "sms: HTTP 400, error 21211"
    assert_safe(failed.value, SMS)


async def test_sms_with_a_wrong_token_is_refused(outbox: Path) -> None:
    async with SmsApiFake() as api:
        channel = SmsChannel(sms_settings(outbox, api, NOTIFIER_SMS_AUTH_TOKEN="not-the-token"))
        try:
            with pytest.raises(PermanentSendError) as failed:
                await channel.deliver(SMS)
        finally:
            await channel.aclose()
    assert failed.value.reason == "sms: HTTP 401, error 20003"
    assert api.messages == []


async def test_sms_api_down_or_silent_is_transient(outbox: Path) -> None:
    down = SmsChannel(sms_settings(outbox, NOTIFIER_SMS_BASE_URL=f"http://127.0.0.1:{free_port()}"))
    async with silent_server() as port:
        silent = SmsChannel(
            sms_settings(
                outbox,
                NOTIFIER_SMS_BASE_URL=f"http://127.0.0.1:{port}",
                NOTIFIER_SMS_TIMEOUT_S=0.3,
            )
        )
        try:
            with pytest.raises(TransientSendError) as refused:
                await down.deliver(SMS)
            with pytest.raises(TransientSendError) as timed_out:
                await silent.deliver(SMS)
        finally:
            await down.aclose()
            await silent.aclose()
    assert refused.value.reason == "sms: connection failed (ConnectError)"
    assert timed_out.value.reason == "sms: timed out"


async def test_sms_without_a_number_is_permanent(outbox: Path) -> None:
    async with SmsApiFake() as api:
        channel = SmsChannel(sms_settings(outbox, api))
        try:
            with pytest.raises(PermanentSendError, match="no recipient number"):
                await channel.deliver(OutboundMessage(**{**SMS.__dict__, "to": " "}))
        finally:
            await channel.aclose()
    assert api.requests == []


# --- webhook -----------------------------------------------------------------------


async def test_webhook_body_verifies_and_a_tampered_one_does_not(outbox: Path) -> None:
    async with WebhookReceiver() as receiver:
        channel = WebhookChannel(
            settings(outbox, NOTIFIER_WEBHOOK_URL=receiver.url, NOTIFIER_WEBHOOK_SECRET=SECRET)
        )
        try:
            await channel.deliver(SPANISH)
        finally:
            await channel.aclose()
        (post,) = await receiver.wait_for_posts(1)

    assert post.path == "/hooks/clinicflow"
    assert post.headers["content-type"] == "application/json"
    assert json.loads(post.body) == {
        "notification_id": SPANISH.notification_id,
        "client_id": "c-42",
        "location_id": "beaverton",
        "kind": "reminder",
        "subject": SPANISH.subject,
        "body": SPANISH.body,
        "sent_at": SPANISH.sent_at,
    }
    timestamp, signature = (
        post.headers["x-clinicflow-timestamp"],
        post.headers["x-clinicflow-signature"],
    )
    assert signature.startswith("sha256=")
    now = time.time()
    assert abs(now - int(timestamp)) < 60  # real time, whatever the shared clock says
    assert verify_webhook(SECRET, timestamp, post.body, signature, now=now)

    tampered = post.body.replace(b"10:00", b"11:00")
    assert tampered != post.body
    assert not verify_webhook(SECRET, timestamp, tampered, signature, now=now)
    assert not verify_webhook("another-secret-0123456789", timestamp, post.body, signature, now=now)
    assert not verify_webhook(SECRET, str(int(timestamp) + 1), post.body, signature, now=now)
    assert not verify_webhook(SECRET, "soon", post.body, signature, now=now)
    # a captured request replayed later is refused
    late = int(timestamp) + 301
    assert not verify_webhook(SECRET, timestamp, post.body, signature, now=late)
    assert verify_webhook(SECRET, timestamp, post.body, signature, now=late, tolerance_s=600)


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (429, TransientSendError),
        (500, TransientSendError),
        (503, TransientSendError),
        (400, PermanentSendError),
        (404, PermanentSendError),
        (410, PermanentSendError),
    ],
)
async def test_webhook_failures_are_classified(
    outbox: Path, status: int, failure: type[SendError]
) -> None:
    async with WebhookReceiver() as receiver:
        receiver.fail_next(status)
        channel = WebhookChannel(
            settings(outbox, NOTIFIER_WEBHOOK_URL=receiver.url, NOTIFIER_WEBHOOK_SECRET=SECRET)
        )
        try:
            with pytest.raises(failure) as failed:
                await channel.deliver(SPANISH)
        finally:
            await channel.aclose()
    assert failed.value.reason == f"webhook: HTTP {status}"
    assert_safe(failed.value, SPANISH)


# --- console, configuration --------------------------------------------------------


async def test_console_outbox_writes_a_json_line_and_logs_no_text(
    outbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old_style = OutboundMessage(
        notification_id="n-1",
        channel="console",
        to="client:c-42",
        subject="Reminder",
        body="Your visit is on Tuesday at 10:00.",
        sent_at="2027-03-08T17:00:00+00:00",
    )
    outbox_channel = ConsoleOutbox(outbox)
    assert outbox_channel.channel == "console"
    with caplog.at_level(logging.INFO, logger="services.notifier.channels"):
        await outbox_channel.deliver(old_style)
    (line,) = (await asyncio.to_thread(outbox.read_text, encoding="utf-8")).splitlines()
    assert json.loads(line)["body"] == old_style.body
    assert json.loads(line)["notification_id"] == "n-1"
    assert "n-1" in caplog.text
    assert old_style.body not in caplog.text and "client:c-42" not in caplog.text


async def test_channels_from_builds_only_the_configured_channels(outbox: Path) -> None:
    sms_env = {
        "NOTIFIER_SMS_ACCOUNT_SID": "AC" + "0" * 32,
        "NOTIFIER_SMS_AUTH_TOKEN": "token-" + "0" * 26,
        "NOTIFIER_SMS_FROM": "+15035550100",
    }
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({}, {"console"}),
        ({"NOTIFIER_SMTP_HOST": "smtp.example.org"}, {"console", "email"}),
        ({"NOTIFIER_SMTP_HOST": ""}, {"console"}),
        (sms_env, {"console", "sms"}),
        ({**sms_env, "NOTIFIER_SMS_AUTH_TOKEN": None}, {"console"}),
        ({**sms_env, "NOTIFIER_SMS_FROM": None}, {"console"}),
        (
            {**sms_env, "NOTIFIER_SMS_FROM": None, "NOTIFIER_SMS_MESSAGING_SERVICE_SID": "MG1"},
            {"console", "sms"},
        ),
        (
            {"NOTIFIER_WEBHOOK_URL": "https://crm.example/hook", "NOTIFIER_WEBHOOK_SECRET": SECRET},
            {"console", "webhook"},
        ),
        (
            {
                "NOTIFIER_SMTP_HOST": "smtp.example.org",
                **sms_env,
                "NOTIFIER_WEBHOOK_URL": "https://crm.example/hook",
                "NOTIFIER_WEBHOOK_SECRET": SECRET,
            },
            {"console", "email", "sms", "webhook"},
        ),
    ]
    for env, expected in cases:
        channels = channels_from(settings(outbox, **env))
        try:
            assert set(channels) == expected, env
            assert all(channel.channel == name for name, channel in channels.items())
        finally:
            await close_channels(channels)


def test_a_webhook_url_without_a_secret_is_refused(outbox: Path) -> None:
    with pytest.raises(ValidationError, match="NOTIFIER_WEBHOOK_SECRET"):
        settings(outbox, NOTIFIER_WEBHOOK_URL="https://crm.example/hook")


@pytest.fixture
def production(tmp_path: Path) -> Iterator[dict[str, Any]]:
    yield {
        "CLINICFLOW_ENV": "production",
        "CLINICFLOW_CHAIN_CONFIG": tmp_path / "chain.yaml",
        "CLINICFLOW_LINK_SECRET": "production-link-secret-0123456789",
    }


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        ({"NOTIFIER_SMS_AUTH_TOKEN": "short"}, "NOTIFIER_SMS_AUTH_TOKEN"),
        (
            {
                "NOTIFIER_WEBHOOK_URL": "https://crm.example/hook",
                "NOTIFIER_WEBHOOK_SECRET": "short",
            },
            "NOTIFIER_WEBHOOK_SECRET",
        ),
        (
            {"NOTIFIER_SMTP_HOST": "smtp.example.org", "NOTIFIER_SMTP_SECURITY": "none"},
            "NOTIFIER_SMTP_SECURITY",
        ),
        (
            {"NOTIFIER_WEBHOOK_URL": "http://crm.example/hook", "NOTIFIER_WEBHOOK_SECRET": SECRET},
            "NOTIFIER_WEBHOOK_URL must use https",
        ),
    ],
)
def test_production_refuses_weak_provider_settings(
    production: dict[str, Any], env: dict[str, Any], refused: str
) -> None:
    with pytest.raises(ValidationError, match=refused):
        NotifierSettings(**production, **env)


def test_production_accepts_plain_smtp_to_a_local_relay(production: dict[str, Any]) -> None:
    relay = NotifierSettings(
        **production, NOTIFIER_SMTP_HOST="localhost", NOTIFIER_SMTP_SECURITY="none"
    )
    assert relay.email_configured
    strong = NotifierSettings(
        **production,
        NOTIFIER_SMS_ACCOUNT_SID="AC" + "0" * 32,
        NOTIFIER_SMS_AUTH_TOKEN="a" * 32,
        NOTIFIER_SMS_FROM="+15035550100",
    )
    assert strong.sms_configured
