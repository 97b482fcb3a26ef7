"""Process settings (environment variables), one class per service on a common base.

Settings fail closed: outside development a simulated clock, demo API keys or a
missing chain configuration stop start-up with a clear message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    rebalance_timeout_s: float = Field(default=2.0, gt=0)
    session_timeout_s: float = Field(default=10.0, gt=0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    request_timeout_s: float = Field(default=30.0, gt=0)
    send_timeout_s: float = Field(default=10.0, gt=0)


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    env: Literal["development", "test", "production"] = Field(
        default="development", validation_alias="CLINICFLOW_ENV"
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
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
    kafka: KafkaTuning = Field(default_factory=KafkaTuning)
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, validation_alias="CLINICFLOW_MAX_BODY_BYTES"
    )
    api_rate_limit_per_minute: int = Field(
        default=600, ge=1, validation_alias="API_RATE_LIMIT_PER_MINUTE"
    )
    api_rate_limit_burst: int = Field(default=60, ge=1, validation_alias="API_RATE_LIMIT_BURST")
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
            if self.link_secret.get_secret_value() == DEV_LINK_SECRET:
                raise ValueError("CLINICFLOW_LINK_SECRET must be set in production")
        return self


class IntakeSettings(CommonSettings):
    port: int = Field(default=8001, validation_alias="INTAKE_PORT")
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, validation_alias="INTAKE_MAX_BODY_BYTES"
    )
    session_ttl_s: float = Field(default=72 * 3600, gt=0, validation_alias="INTAKE_SESSION_TTL_S")


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
    claim_lease_s: float = Field(default=30.0, gt=0, validation_alias="NOTIFIER_CLAIM_LEASE_S")
    confirm_url_template: str = Field(
        default="http://127.0.0.1:8003/v1/visits/{visit_id}.ics?sig={sig}",
        validation_alias="NOTIFIER_CONFIRM_URL_TEMPLATE",
        description="{visit_id} and {sig}, the link's signature (shared/links.py)",
    )
