"""Settings from the environment (`PATIENTLINE_*`) and an optional `patientline.toml`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PATIENTLINE_", toml_file="patientline.toml", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = ""
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    roles: str = Field(default="web,worker,router", description="roles this process takes")
    timezone: str = "Asia/Shanghai"
    default_locale: str = "zh_CN"
    max_body_bytes: int = 1024 * 1024
    max_upload_bytes: int = 10 * 1024 * 1024  # evidence attached to work orders
    hotline_number: str = Field(default="", max_length=20, description="the number patients call, for SMS texts")
    demo_traffic: bool = Field(default=False, description="made-up callers queue up (the demo: make run)")
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    lockout_failures: int = 5
    lockout_minutes: int = 15
    password_min_length: int = 10
    secure_cookies: bool = False
    event_retention_days: int = 30
    worker_poll_seconds: float = 1.0
    log_level: str = "INFO"
    # SMS and email (channels/): adapters, sending policy, provider endpoints; see docs/OPERATIONS.md
    sms_adapter: Literal["sink", "smpp", "http"] = "sink"
    sms_sign_name: str = Field(default="", max_length=20, description="【签名】 the recipient sees")
    sms_quiet_hours: str = Field(default="21:00-08:00", pattern=r"^$|^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    sms_rate_limit: int = Field(default=5, ge=1, description="patient messages per phone or patient per window")
    sms_rate_window_hours: int = Field(default=24, ge=1)
    sms_max_attempts: int = Field(default=5, ge=1, le=20)
    sms_sink_receipt_seconds: float = 2.0
    sms_smpp_host: str = "127.0.0.1"
    sms_smpp_port: int = 2775
    sms_smpp_system_id: str = ""
    sms_smpp_password: SecretStr = SecretStr("")
    sms_smpp_system_type: str = ""
    sms_smpp_source_addr: str = ""
    sms_smpp_timeout_seconds: float = Field(default=10.0, gt=0)
    sms_smpp_linger_seconds: float = Field(default=1.0, ge=0, description="time to read receipts after sending")
    sms_smpp_poll_inbox: bool = Field(default=True, description="bind once a minute to collect receipts and replies")
    sms_http_endpoint: str = "https://dysmsapi.aliyuncs.com/"
    sms_http_access_key_id: str = ""
    sms_http_access_key_secret: SecretStr = SecretStr("")
    sms_http_region: str = "cn-hangzhou"
    sms_http_timeout_seconds: float = Field(default=10.0, gt=0)
    sms_receipt_secret: SecretStr = SecretStr("")
    email_adapter: Literal["sink", "smtp"] = "sink"
    email_from: str = "patientline@localhost"
    email_smtp_host: str = "127.0.0.1"
    email_smtp_port: int = 25
    email_smtp_user: str = ""
    email_smtp_password: SecretStr = SecretStr("")
    email_smtp_starttls: bool = False
    email_smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    email_max_attempts: int = Field(default=5, ge=1, le=20)
    # the hospital's systems (patients/): which HIS adapter, its limits, the HL7 v2 listener; docs/PATIENTS.md
    his_adapter: Literal["off", "simulator", "fhir"] = "simulator"
    his_fhir_url: str = Field(default="", description="FHIR R4 base URL, e.g. https://his.example/fhir")
    his_fhir_token: SecretStr = SecretStr("")
    his_timeout_seconds: float = Field(default=1.5, gt=0, le=30, description="one HIS call; then cached data")
    his_breaker_failures: int = Field(default=3, ge=1, description="failures in a row that open the breaker")
    his_breaker_seconds: float = Field(default=30.0, gt=0, description="how long an open breaker waits")
    his_simulator_latency_ms: int = Field(default=80, ge=0, le=60_000)
    his_simulator_failure_rate: float = Field(default=0.0, ge=0, le=1)
    hl7_listen: str = Field(default="", description="host:port of the HL7 v2 MLLP listener; empty: off")
    hl7_retention_days: int = Field(
        default=30, ge=1, description="accepted HL7 messages are remembered (to answer resends) this long"
    )
    results_show_content: bool = Field(default=False, description="agents see results, not only their status")
    contact_retention_days: int = Field(default=1095, ge=30, description="contacts older than this are anonymised")
    chat_queue: str = Field(default="GENERAL", max_length=32, description="routing queue code chats are handed to")
    chat_persona: str = Field(default="", max_length=40, description="the name people answer chats under")
    chat_agent_names: bool = Field(default=False, description="patients see each agent's own name, not the persona")
    chat_answer_confidence: float = Field(default=0.5, ge=0, le=1, description="the bot answers at this confidence")
    chat_frame_origins: str = Field(default="", description="sites that may embed the chat widget, space-separated")
    chat_messages_per_minute: int = Field(default=20, ge=1, description="per chat session")
    chat_sessions_per_hour: int = Field(default=30, ge=1, description="new chat sessions per IP address")
    chat_idle_minutes: int = Field(default=30, ge=1, description="a chat nobody writes in closes after this")
    voice: bool = Field(default=False, description="the phone line: Kamailio, media workers, the IVR (role voice)")
    voice_sip_host: str = Field(default="127.0.0.1", description="the address Kamailio listens on")
    voice_sip_port: int = Field(default=5080, ge=1, le=65535, description="the SIP port phones and trunks use")
    voice_sip_realm: str = Field(
        default="patientline",
        pattern=r"^[A-Za-z0-9.-]{1,100}$",
        description="the realm phones log in to (changing it voids their passwords)",
    )
    voice_workers: int = Field(default=4, ge=1, le=200, description="media workers: one conversation each")
    voice_worker_port: int = Field(default=5091, ge=1, le=65000, description="the first worker's SIP port")
    voice_rtp_port: int = Field(
        default=20000, ge=1024, le=60000, description="the first media (RTP) port: each worker uses the next 8"
    )
    voice_numbers: str = Field(default="8585", pattern=r"^[0-9+*#]{1,20}(,[0-9+*#]{1,20})*$",
                               description="the hotline numbers the SIP front sends to the workers")  # fmt: skip
    voice_trunk: str = Field(default="", description="sip:host:port where calls to outside numbers go; empty: none")
    voice_caller_ids: str = Field(
        default="8585",
        pattern=r"^[0-9+]{3,20}(,[0-9+]{3,20}){0,4}$",
        description="the hospital's numbers outbound calls may show, the default first",
    )
    voice_withheld_allowed: bool = Field(default=False, description="agents may withhold the number on outbound calls")
    voice_calls_abroad: bool = Field(default=False, description="agents may call numbers outside China")
    voice_self_test_minutes: int = Field(default=15, ge=0, le=1440, description="a test call into the line; 0: never")
    voice_self_test_keys: str = Field(default="0", pattern=r"^[0-9*#]{0,20}$", description="keys the test call presses")
    voice_oncall_phone: str = Field(default="", description="the mobile texted when the line's self-test fails")
    voice_auto_answer: bool = Field(default=False, description="agents' phones answer offered calls at once")
    voice_announce_seconds: float = Field(default=30.0, gt=0, description="callers in a queue hear their place")
    voice_recording_retention_days: int = Field(default=180, ge=1, description="recordings older are deleted")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.var_dir / 'patientline.db').as_posix()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def role_set(self) -> frozenset[str]:
        roles = {r.strip() for r in self.roles.split(",") if r.strip()}
        return frozenset(roles | {"voice"} if self.voice else roles)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
