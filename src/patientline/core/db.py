"""Engine, sessions and the declarative base shared by every domain."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import DateTime, Integer, MetaData, event
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column, orm_insert_sentinel
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

from patientline.core import clock
from patientline.core.errors import Conflict
from patientline.core.sqlite_driver import OneTripDbapi

if TYPE_CHECKING:
    from patientline.core.events import Bus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out; SQLite keeps naive UTC, PostgreSQL timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UnitOfWork(Session):
    """The sync session behind every AsyncSession; `info["bus"]` is where core.events publishes
    after commit (its listeners are registered on this class)."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IdMixin:
    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class BulkInsertMixin:
    """For tables that take many rows in one flush: SQLite numbers new rows in no promised order, so
    SQLAlchemy inserts them one statement each unless a client-side sentinel lets it match the rows
    RETURNING gives back to the objects; with it, one statement for the lot (PostgreSQL too)."""

    _sentinel: Mapped[int | None] = orm_insert_sentinel()


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class VersionMixin:
    """Optimistic locking: UPDATE ... WHERE version = :seen, StaleDataError when someone else won."""

    version: Mapped[int] = mapped_column(Integer, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.version}


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_before_savepoint(connection: Connection, _name: str) -> None:
    """The SQLite driver opens a transaction only before its first data change (so reads never hold a
    snapshot that a later write would have to upgrade, which SQLite refuses without waiting). It does
    not do so before a SAVEPOINT, and SQLite takes a SAVEPOINT outside a transaction as the transaction
    itself: releasing it would commit. Savepoints only guard writes, so take the write lock first."""
    raw = connection.connection.driver_connection
    if raw is not None and not raw.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _json(value: Any) -> str:
    """Chinese stays readable (and searchable) in JSON columns."""
    return orjson.dumps(value).decode()


def _ensure_sqlite_folder(url: str) -> None:
    """A fresh checkout has no var/ yet: SQLite creates the file, not its folder."""
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        _ensure_sqlite_folder(url)
        engine = create_async_engine(url, module=OneTripDbapi(), pool_size=8, max_overflow=8, json_serializer=_json)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, json_serializer=_json)


class Database:
    """One engine and session factory per process."""

    def __init__(self, url: str, bus: Bus | None = None) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            autoflush=False,
            sync_session_class=UnitOfWork,
            info={"bus": bus},
        )

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    async def dispose(self) -> None:
        await self.engine.dispose()


async def flush_or_conflict(session: AsyncSession) -> None:
    """Flushes in a savepoint: a broken unique or foreign-key constraint becomes a 409 and leaves the
    transaction usable."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "This change conflicts with existing records.",
            error_id="integrity_conflict",
            details={"reason": type(exc.orig).__name__},
        ) from exc
