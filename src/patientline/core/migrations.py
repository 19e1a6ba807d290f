"""Alembic, driven from code: `patientline migrate` and the tests call `upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from patientline.core.db import Base


def all_models() -> type[Base]:
    """Import every domain's models so `Base.metadata` knows all tables."""
    from patientline.channels import models as channels_models  # noqa: F401
    from patientline.contacts import models as contacts_models  # noqa: F401
    from patientline.core import audit, events, jobs, workcal  # noqa: F401
    from patientline.core.auth import models as auth_models  # noqa: F401
    from patientline.directory import models as directory_models  # noqa: F401
    from patientline.knowledge import models as knowledge_models  # noqa: F401
    from patientline.patients import models as patients_models  # noqa: F401
    from patientline.routing import models as routing_models  # noqa: F401
    from patientline.voice import models as voice_models  # noqa: F401
    from patientline.workorders import models as workorders_models  # noqa: F401

    return Base


def migrations_dir() -> Path:
    here = Path(__file__).resolve()
    for candidate in (here.parent.parent / "migrations", here.parents[3] / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("the migrations folder is missing")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
