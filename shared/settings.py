"""Process settings (environment variables), one class per service on a common base.

Settings fail closed: outside development a simulated clock, demo API keys or a
missing chain configuration stop start-up with a clear message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.strength import weakness

DEV_LINK_SECRET = "clinicflow-development-link-secret"
DEFAULT_CHAIN_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "dev" / "chain.yaml"


class KafkaTuning(BaseSettings):
    """Client settings that differ between the embedded broker (Tansu) and Apache Kafka.

    Tansu has no idempotent producer, does not wake fetch long-polls on new data
    and makes a group join wait for the rebalance timeout (DESIGN.md); the
    defaults here suit it, production overrides them through the environment.
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    enable_idempotence: bool = False
    fetch_max_wait_ms: int = Field(default=25, ge=0, le=5000)
    idle_fetch_max_wait_ms: int = Field(
        default=250,
        ge=0,
        le=5000,
        description="the fetch wait of a consumer that has had no records for "
        "idle_after_s; back to fetch_max_wait_ms with the first record",
    )
    idle_after_s: float = Field(default=2.0, gt=0)
    rebalance_timeout_s: float = Field(default=2.0, gt=0)
    session_timeout_s: float = Field(default=10.0, gt=0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    send_timeout_s: float = Field(default=10.0, gt=0)
    max_message_bytes: int = Field(
        default=1_048_576,
        ge=64 * 1024,
        description="the largest record a producer sends (its max_request_size) and what a "
        "dead letter is cut to fit; keep it at or below the broker's message.max.bytes",
    )


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        default="development", validation_alias="CLINICFLOW_ENV"
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    redis_pool_size: int = Field(
        default=100,
        ge=1,
        validation_alias="REDIS_POOL_SIZE",
        description="Redis connections per process: past them a request waits for one",
    )
    redis_pool_wait_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="REDIS_POOL_WAIT_S",
        description="how long a request waits for a Redis connection while Redis answers "
        "(its deadline: callers have given up by then); Redis not answering fails it at once",
    )
    redis_namespace: str = Field(
        default="clinicflow", validation_alias="CLINICFLOW_REDIS_NAMESPACE", pattern=r"^[\w.-]+$"
    )
    clock: str = Field(default="system", validation_alias="CLINICFLOW_CLOCK")
    clock_anchor: float | None = Field(default=None, validation_alias="CLINICFLOW_CLOCK_ANCHOR")
    chain_config: Path = Field(
        default=DEFAULT_CHAIN_CONFIG, validation_alias="CLINICFLOW_CHAIN_CONFIG"
    )
    host: str = Field(default="127.0.0.1", validation_alias="CLINICFLOW_HOST")
    log_level: str = Field(default="INFO", validation_alias="CLINICFLOW_LOG_LEVEL")
    log_format: Literal["json", "console"] = Field(
        default="json",
        validation_alias="CLINICFLOW_LOG_FORMAT",
        description="json: one JSON object per line (shared/logs.py); console: readable lines",
    )
    kafka: KafkaTuning = Field(default_factory=KafkaTuning)
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, validation_alias="CLINICFLOW_MAX_BODY_BYTES"
    )
    api_rate_limit_per_minute: int = Field(
        default=600, ge=1, validation_alias="API_RATE_LIMIT_PER_MINUTE"
    )
    api_rate_limit_burst: int = Field(default=60, ge=1, validation_alias="API_RATE_LIMIT_BURST")
    api_failed_keys_per_minute: int = Field(
        default=10,
        ge=1,
        validation_alias="API_FAILED_KEYS_PER_MINUTE",
        description="unknown API keys one client address may send per minute, sustained",
    )
    api_failed_keys_burst: int = Field(
        default=20,
        ge=1,
        validation_alias="API_FAILED_KEYS_BURST",
        description="unknown API keys one client address may send at once; past the "
        "allowance every request from it that needs a key gets 429 with Retry-After",
    )
    link_secret: SecretStr = Field(
        default=SecretStr(DEV_LINK_SECRET),
        min_length=16,
        validation_alias="CLINICFLOW_LINK_SECRET",
        description="signs the links clients open from messages (shared/links.py)",
    )

    @model_validator(mode="after")
    def _fail_closed_in_production(self) -> CommonSettings:
        if self.env == "production":
            if self.clock != "system":
                raise ValueError("CLINICFLOW_CLOCK must be 'system' when CLINICFLOW_ENV=production")
            if self.chain_config == DEFAULT_CHAIN_CONFIG:
                raise ValueError(
                    "CLINICFLOW_CHAIN_CONFIG must name the chain's own configuration "
                    "in production (the demo chain ships demo keys)"
                )
            secret = self.link_secret.get_secret_value()
            if secret == DEV_LINK_SECRET:
                raise ValueError("CLINICFLOW_LINK_SECRET must be set in production")
            if (reason := weakness(secret)) is not None:
                raise ValueError(f"CLINICFLOW_LINK_SECRET is too weak for production: {reason}")
        return self


class IntakeSettings(CommonSettings):
    port: int = Field(default=8001, validation_alias="INTAKE_PORT")
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, validation_alias="INTAKE_MAX_BODY_BYTES"
    )
    session_ttl_s: float = Field(default=72 * 3600, gt=0, validation_alias="INTAKE_SESSION_TTL_S")
    publish_wait_s: float = Field(
        default=2.0,
        gt=0,
        validation_alias="INTAKE_PUBLISH_WAIT_S",
        description="how long a submit waits for the broker before the outbox relay takes over",
    )
    duplicate_window_s: float = Field(
        default=24 * 3600,
        gt=0,
        validation_alias="INTAKE_DUPLICATE_WINDOW_S",
        description="the same document from the same key within this window is one intake",
    )


class PlannerSettings(CommonSettings):
    port: int = Field(default=8002, validation_alias="PLANNER_PORT")


class SchedulerSettings(CommonSettings):
    port: int = Field(default=8003, validation_alias="SCHEDULER_PORT")


class NotifierSettings(CommonSettings):
    port: int = Field(default=8004, validation_alias="NOTIFIER_PORT")
    outbox_path: Path = Field(
        default=Path("var/outbox/notifications.jsonl"), validation_alias="NOTIFIER_OUTBOX_PATH"
    )
    poll_interval_s: float = Field(default=0.5, gt=0, validation_alias="NOTIFIER_POLL_INTERVAL_S")
    claim_lease_s: float = Field(
        default=10.0,
        ge=1,
        validation_alias="NOTIFIER_CLAIM_LEASE_S",
        description="how long a claimed notification stays with its sender without a "
        "renewal (renewed every third of it while the sender lives): what a killed "
        "instance strands for",
    )
    send_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        validation_alias="NOTIFIER_SEND_CONCURRENCY",
        description="messages in flight at once per channel (also the SMTP sessions kept open)",
    )
    confirm_url_template: str = Field(
        default="http://127.0.0.1:8003/v1/visits/{visit_id}/manage?sig={sig}&lang={lang}",
        validation_alias="NOTIFIER_CONFIRM_URL_TEMPLATE",
        description="the visit's page (confirm, cancel, move): {visit_id}, {sig}, the link's "
        "signature (shared/links.py), and {lang}, the client's language",
    )
    offer_url_template: str = Field(
        default="http://127.0.0.1:8003/v1/waitlist-offers/{offer_id}/manage?sig={sig}&lang={lang}",
        validation_alias="NOTIFIER_OFFER_URL_TEMPLATE",
        description="a waitlist offer's page (accept, decline): {offer_id}, {sig}, {lang}; "
        "{action} (accept or decline) where a template still names it",
    )
    checkin_url_template: str = Field(
        default="http://127.0.0.1:8004/v1/checkins/{notification_id}?sig={sig}",
        validation_alias="NOTIFIER_CHECKIN_URL_TEMPLATE",
        description="the check-in reply page: {notification_id}, {sig}",
    )
    calendar_url_template: str = Field(
        default="http://127.0.0.1:8003/v1/clients/{client_id}/calendar.ics?sig={sig}",
        validation_alias="NOTIFIER_CALENDAR_URL_TEMPLATE",
        description="the client's calendar feed in booking confirmations: {client_id}, {sig}",
    )
    template_dir: Path | None = Field(
        default=None,
        validation_alias="NOTIFIER_TEMPLATE_DIR",
        description="overrides of the message templates: <dir>/<location_id>/<lang>/ "
        "or <dir>/<lang>/ (services/notifier/messages.py)",
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        le=20,
        validation_alias="NOTIFIER_MAX_ATTEMPTS",
        description="tries of one message on transient failures, the first included",
    )
    retry_base_s: float = Field(
        default=5.0,
        gt=0,
        validation_alias="NOTIFIER_RETRY_BASE_S",
        description="the first retry waits up to this long (then doubling, jittered)",
    )
    retry_cap_s: float = Field(
        default=600.0,
        gt=0,
        validation_alias="NOTIFIER_RETRY_CAP_S",
        description="no retry waits longer than this",
    )
    client_max_per_hour: int = Field(
        default=10,
        ge=1,
        validation_alias="NOTIFIER_CLIENT_MAX_PER_HOUR",
        description="messages to one client per hour; more are suppressed (rate_limited)",
    )
    global_max_per_minute: int = Field(
        default=300,
        ge=1,
        validation_alias="NOTIFIER_GLOBAL_MAX_PER_MINUTE",
        description="messages per minute for the whole chain; more wait for the next minute",
    )

    # e-mail (services/notifier/channels.py EmailChannel); configured when a host is set
    smtp_host: str | None = Field(
        default=None,
        validation_alias="NOTIFIER_SMTP_HOST",
        description="SMTP server; unset: no e-mail channel",
    )
    smtp_port: int = Field(
        default=587, ge=1, le=65535, validation_alias="NOTIFIER_SMTP_PORT", description="SMTP port"
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        validation_alias="NOTIFIER_SMTP_SECURITY",
        description="starttls (required, port 587), tls (implicit, port 465) or none "
        "(plain text: refused in production unless the host is this machine)",
    )
    smtp_username: str | None = Field(
        default=None, validation_alias="NOTIFIER_SMTP_USERNAME", description="SMTP AUTH login"
    )
    smtp_password: SecretStr | None = Field(
        default=None, validation_alias="NOTIFIER_SMTP_PASSWORD", description="SMTP AUTH password"
    )
    email_from: str = Field(
        default="no-reply@clinicflow.invalid",
        pattern=r"^[^@\s<>]+@[^@\s<>]+$",
        validation_alias="NOTIFIER_EMAIL_FROM",
        description="the From address (also the domain of each message's Message-ID)",
    )
    email_from_name: str | None = Field(
        default=None,
        validation_alias="NOTIFIER_EMAIL_FROM_NAME",
        description="display name shown with the From address, e.g. the chain's name",
    )
    smtp_timeout_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias="NOTIFIER_SMTP_TIMEOUT_S",
        description="the most connecting may take, and then the most one e-mail may take",
    )
    smtp_idle_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="NOTIFIER_SMTP_IDLE_S",
        description="an SMTP session idle this long is closed (reused until then)",
    )
    smtp_messages_per_session: int = Field(
        default=100,
        ge=1,
        validation_alias="NOTIFIER_SMTP_MESSAGES_PER_SESSION",
        description="messages sent over one SMTP session before a fresh one is opened",
    )

    # SMS, Twilio-compatible REST (SmsChannel); configured with sid, token and a sender
    sms_base_url: str = Field(
        default="https://api.twilio.com",
        pattern=r"^https?://",
        validation_alias="NOTIFIER_SMS_BASE_URL",
        description="the API's base URL (a test double's in tests)",
    )
    sms_account_sid: str | None = Field(
        default=None,
        validation_alias="NOTIFIER_SMS_ACCOUNT_SID",
        description="account SID: the Basic auth user and part of the API path",
    )
    sms_auth_token: SecretStr | None = Field(
        default=None,
        validation_alias="NOTIFIER_SMS_AUTH_TOKEN",
        description="auth token: the Basic auth password; also signs inbound messages",
    )
    sms_from: str | None = Field(
        default=None,
        validation_alias="NOTIFIER_SMS_FROM",
        description="sending number (E.164), unless a messaging service is set",
    )
    sms_messaging_service_sid: str | None = Field(
        default=None,
        validation_alias="NOTIFIER_SMS_MESSAGING_SERVICE_SID",
        description="messaging service SID; when set it is sent instead of From",
    )
    sms_status_callback_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        validation_alias="NOTIFIER_SMS_STATUS_CALLBACK_URL",
        description="where the provider reports delivery status (StatusCallback)",
    )
    sms_timeout_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias="NOTIFIER_SMS_TIMEOUT_S",
        description="the most one API request may take",
    )
    sms_idempotency_header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]+$",
        validation_alias="NOTIFIER_SMS_IDEMPOTENCY_HEADER",
        description="a header the provider dedupes requests by (e.g. Idempotency-Key), "
        "sent with the notification id; Twilio's Messages API has none",
    )
    sms_inbound_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        validation_alias="NOTIFIER_SMS_INBOUND_URL",
        description="the public URL the provider posts replies to, exactly as configured "
        "there: inbound signatures are computed over it (services/notifier/sms_inbound.py)",
    )

    # generic signed webhook (WebhookChannel); configured when a URL is set
    webhook_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        validation_alias="NOTIFIER_WEBHOOK_URL",
        description="where each message is POSTed as signed JSON; unset: no webhook channel",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias="NOTIFIER_WEBHOOK_SECRET",
        description="HMAC-SHA256 key of X-Clinicflow-Signature; required with a webhook URL",
    )
    webhook_timeout_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias="NOTIFIER_WEBHOOK_TIMEOUT_S",
        description="the most one webhook request may take",
    )

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_host)

    @property
    def sms_configured(self) -> bool:
        sender = self.sms_from or self.sms_messaging_service_sid
        return bool(self.sms_account_sid and self._reveal(self.sms_auth_token) and sender)

    @property
    def webhook_configured(self) -> bool:
        return bool(self.webhook_url)

    @staticmethod
    def _reveal(secret: SecretStr | None) -> str:
        return secret.get_secret_value() if secret is not None else ""

    @staticmethod
    def _is_local(host: str) -> bool:
        return host in ("localhost", "::1") or host.startswith("127.")

    @classmethod
    def _is_local_url(cls, url: str) -> bool:
        from urllib.parse import urlsplit  # only this validator needs it

        return cls._is_local(urlsplit(url).hostname or "")

    @model_validator(mode="after")
    def _notifier_fails_closed(self) -> NotifierSettings:
        if self.webhook_configured and not self._reveal(self.webhook_secret):
            # an unsigned webhook would let anyone who finds the receiver's URL post messages
            raise ValueError("NOTIFIER_WEBHOOK_SECRET must be set when NOTIFIER_WEBHOOK_URL is")
        if self.env != "production":
            return self
        for name, secret in (
            ("NOTIFIER_SMS_AUTH_TOKEN", self.sms_auth_token),
            ("NOTIFIER_WEBHOOK_SECRET", self.webhook_secret),
        ):
            if 0 < len(self._reveal(secret)) < 16:
                raise ValueError(f"{name} must be at least 16 characters in production")
            if self._reveal(secret).startswith("change-me"):
                raise ValueError(f"{name} is still the placeholder of deploy/k8s/secret.yaml")
        if self.smtp_host and self.smtp_security == "none" and not self._is_local(self.smtp_host):
            raise ValueError(
                "NOTIFIER_SMTP_SECURITY=none sends passwords and messages in plain text; "
                "in production it is only allowed for an SMTP server on localhost"
            )
        plain_http = [
            name
            for name, url, used in (
                ("NOTIFIER_SMS_BASE_URL", self.sms_base_url, self.sms_configured),
                ("NOTIFIER_WEBHOOK_URL", self.webhook_url or "", self.webhook_configured),
            )
            if used and url.startswith("http://") and not self._is_local_url(url)
        ]
        if plain_http:
            raise ValueError(f"{', '.join(plain_http)} must use https in production")
        return self


class DashboardSettings(CommonSettings):
    port: int = Field(default=8000, validation_alias="DASHBOARD_PORT")
    services: str = Field(
        default="intake=http://127.0.0.1:8001,planner=http://127.0.0.1:8002,"
        "scheduler=http://127.0.0.1:8003,notifier=http://127.0.0.1:8004",
        pattern=r"^\s*[a-z]+=https?://[^,\s]+(\s*,\s*[a-z]+=https?://[^,\s]+)*\s*$",
        validation_alias="DASHBOARD_SERVICES",
        description="name=url of each service, comma-separated; every address a url's host "
        "resolves to is polled, so each replica behind one DNS name is shown",
    )
    poll_interval_s: float = Field(
        default=5.0,
        gt=0,
        validation_alias="DASHBOARD_POLL_INTERVAL_S",
        description="how often each service's /readyz and /metrics are read",
    )
    flow_window_minutes: int = Field(
        default=60,
        ge=5,
        le=1440,
        validation_alias="DASHBOARD_FLOW_WINDOW_MINUTES",
        description="minutes of per-minute event flow kept and shown",
    )

    def service_urls(self) -> dict[str, str]:
        """The services to watch: name -> base URL."""
        pairs = (item.strip().partition("=") for item in self.services.split(","))
        return {name: url.rstrip("/") for name, _, url in pairs}
