"""Settings from the environment (`PATIENTLINE_*`) and an optional `patientline.toml`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    lockout_failures: int = 5
    lockout_minutes: int = 15
    password_min_length: int = 10
    secure_cookies: bool = False
    event_retention_days: int = 30
    worker_poll_seconds: float = 1.0
    log_level: str = "INFO"

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
        return frozenset(r.strip() for r in self.roles.split(",") if r.strip())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
