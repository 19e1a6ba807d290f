"""Test fixtures: every API test runs on SQLite and, when PATIENTLINE_TEST_DATABASE_URL is set, on
PostgreSQL too, against a freshly migrated database."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import PASSWORD, Client
from patientline.core import clock
from patientline.core.auth.actor import SYSTEM
from patientline.core.auth.service import create_user
from patientline.core.config import Settings
from patientline.core.migrations import upgrade
from patientline.web.app import create_app

PG_URL = os.environ.get("PATIENTLINE_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser journeys run last: after a call, Playwright's sync API leaves its own loop set as the
    thread's running loop, and an async test after it could not start its event loop."""
    items.sort(key=lambda item: Path(item.path).parent.name == "e2e")


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


async def _admin_execute(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_plain(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def private_postgres_database(url: str) -> Iterator[str]:
    """A database of this test run's own beside the configured one, so parallel runs cannot collide."""
    import asyncio

    name = f"pl_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin_execute(url, f'CREATE DATABASE "{name}"'))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_admin_execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=BACKENDS)
def migrated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: for SQLite a template file copied per test, for PostgreSQL a private database
    emptied before each test."""
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("db") / "template.db"
        upgrade(f"sqlite+aiosqlite:///{template}")
        yield str(template)
        return
    with private_postgres_database(PG_URL) as url:
        upgrade(url)
        yield url


def truncate_postgres(url: str) -> None:
    import asyncio

    import asyncpg

    async def truncate() -> None:
        conn = await asyncpg.connect(_plain(url))
        try:
            tables = [
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            ]
            await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    asyncio.run(truncate())


@pytest.fixture
def database_url(migrated: str, tmp_path: Path) -> str:
    if migrated.startswith("postgresql"):
        truncate_postgres(migrated)
        return migrated
    copy = tmp_path / "test.db"
    shutil.copy(migrated, copy)
    return f"sqlite+aiosqlite:///{copy}"


@pytest.fixture
def backend(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        var_dir=tmp_path / "var",
        roles="web",
        redis_url="",
        worker_poll_seconds=0.05,
        his_simulator_latency_ms=0,  # the simulated HIS answers at once in tests
        _env_file=None,
    )  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def real_clock() -> Iterator[None]:
    yield
    clock.set_now(None)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def db(app: Any) -> Any:
    return app.state.pl.db


@pytest.fixture
async def anon(app: Any) -> AsyncIterator[Client]:
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield Client(http)


@pytest.fixture
def make_user(db: Any, settings: Settings) -> Any:
    async def make(
        username: str,
        roles: list[str],
        *,
        must_change_password: bool = False,
        site_ids: list[int] | None = None,
        department_ids: list[int] | None = None,
    ) -> int:
        async with db.sessions() as session, session.begin():
            user = await create_user(
                session,
                actor=SYSTEM,
                settings=settings,
                username=username,
                display_name=username.title(),
                password=PASSWORD,
                roles=roles,
                must_change_password=must_change_password,
                site_ids=site_ids,
                department_ids=department_ids,
            )
            return int(user.id)

    return make


@pytest.fixture
async def admin(app: Any, make_user: Any) -> AsyncIterator[Client]:
    await make_user("root", ["admin"])
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = Client(http)
        assert (await client.login("root")).status_code == 200
        yield client


@pytest.fixture
def as_user(app: Any, make_user: Any) -> Any:
    """`async with as_user("agent7", ["agent"]) as client:` a logged-in client for a new user."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def open_client(username: str, roles: list[str], **kwargs: Any) -> AsyncIterator[Client]:
        await make_user(username, roles, **kwargs)
        transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            client = Client(http)
            assert (await client.login(username)).status_code == 200
            yield client

    return open_client
