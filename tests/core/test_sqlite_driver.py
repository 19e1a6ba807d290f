"""The SQLite engine answers as SQLAlchemy's stock aiosqlite adapter does, with one trip per statement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from patientline.core.db import make_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)"))
    yield engine
    await engine.dispose()


async def test_rows_counts_and_ids_come_back(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO item (name) VALUES ('a')"))
        assert inserted.lastrowid == 1
        await conn.execute(text("INSERT INTO item (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}])
        returned = await conn.execute(text("INSERT INTO item (name) VALUES ('d'), ('e') RETURNING id, name"))
        assert sorted(returned.all()) == [(4, "d"), (5, "e")]
        updated = await conn.execute(text("UPDATE item SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 4
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM item"))).scalar_one() == 5
        first_two = await conn.execute(text("SELECT name FROM item ORDER BY id"))
        assert first_two.fetchmany(2) == [("a",), ("b!",)]
        assert [row.name async for row in await conn.stream(text("SELECT name FROM item ORDER BY id"))] == [
            "a",
            "b!",
            "c!",
            "d!",
            "e!",
        ]


async def test_a_failed_statement_raises_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO item (name) VALUES ('a')"))
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO item (name) VALUES ('a')"))
        with pytest.raises(OperationalError):
            await conn.execute(text("SELECT nothing FROM nowhere"))
        await conn.rollback()
        await conn.execute(text("INSERT INTO item (name) VALUES ('b')"))
        await conn.commit()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT name FROM item"))).scalars().all() == ["b"]


async def test_each_statement_is_one_trip_to_the_drivers_thread(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips = 0
    hand_off = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal trips
        trips += 1
        return await hand_off(self, fn, *args, **kwargs)

    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the pool's connection is made and checked first
        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        for name in ("a", "b", "c"):
            await conn.execute(text("INSERT INTO item (name) VALUES (:name) RETURNING id"), {"name": name})
        assert (await conn.execute(text("SELECT count(*) FROM item"))).scalar_one() == 3
        assert trips == 4  # SQLAlchemy's own adapter makes 16: cursor, execute, fetch and close each
