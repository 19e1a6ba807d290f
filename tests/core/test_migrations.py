"""The schema comes from Alembic alone, and the models agree with it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from patientline.core.db import make_engine
from patientline.core.migrations import all_models, downgrade, upgrade


def _differences(url: str) -> list[object]:
    def compare(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, all_models().metadata))

    async def run() -> list[object]:
        engine = make_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_models_match_the_migrations(migrated: str) -> None:
    url = migrated if migrated.startswith("postgresql") else f"sqlite+aiosqlite:///{migrated}"
    assert _differences(url) == []


def test_migrations_go_down_and_up_again(tmp_path: object) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/roundtrip.db"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)

    async def audit_is_append_only() -> str:
        engine = make_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO audit_log (at, actor_name, via, action) VALUES ('2026-01-01', 'x', 'system', 'a')"
                    )
                )
            try:
                async with engine.begin() as connection:
                    await connection.execute(text("DELETE FROM audit_log"))
            except Exception as exc:
                return str(exc)
            return "deleted"
        finally:
            await engine.dispose()

    assert "append-only" in asyncio.run(audit_is_append_only())


def test_a_fresh_checkout_gets_its_data_folder(tmp_path: Path) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path}/var/nested/patientline.db")
    assert (tmp_path / "var" / "nested" / "patientline.db").exists()
