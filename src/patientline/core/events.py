"""Typed events: recorded on the unit of work, written to the durable event log in the same
transaction, published to the bus only after commit.

The bus is in-process by default; with `PATIENTLINE_REDIS_URL` every node publishes to a Redis
channel and fans out what it receives to its own subscribers, so a browser connected to any node
sees events raised on every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, cast

import orjson
from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ARRAY,
    JSON,
    ColumnElement,
    Dialect,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from patientline.core import clock
from patientline.core.db import Base, UnitOfWork

log = logging.getLogger(__name__)

PENDING_KEY = "patientline.pending_events"
LOGGED_KEY = "patientline.logged_events"
TRANSIENT_KEY = "patientline.transient_events"


class Audience(BaseModel):
    """Who may see an event: holders of `permission`, within `site_id`/`department_id` when set,
    or only `user_id` when set."""

    model_config = ConfigDict(frozen=True)
    permission: str | None = None
    site_id: int | None = None
    department_id: int | None = None
    user_id: int | None = None


INTERNAL = Audience(user_id=0)  # no user's stream: for subscribers inside the server (no user has id 0)


class Event(BaseModel):
    """Base of every typed event. Subclasses set `type` and what they carry."""

    model_config = ConfigDict(frozen=True)
    type: ClassVar[str] = "event"
    audience: Audience = Audience()

    def payload(self) -> dict[str, Any]:
        """What the event carries, as JSON (`model_dump(mode="json")` without the audience). Plain
        values of a plain event class are read off the instance: the same dict, several times faster
        (a sweep writes thousands of events in one commit)."""
        plain = _plain_fields(type(self))
        if plain is not None:
            values = self.__dict__
            payload: dict[str, Any] = {}
            for name, kind, nullable in plain:
                value = values[name]
                if type(value) is not kind and not (nullable and value is None):
                    break
                payload[name] = value
            else:
                return payload
        return self.model_dump(mode="json", exclude={"audience"})


_PLAIN_TYPES: dict[str, type] = {"str": str, "int": int, "bool": bool}


@functools.cache
def _plain_fields(cls: type[Event]) -> tuple[tuple[str, type, bool], ...] | None:
    """(name, type, nullable) of each payload field of an event class whose JSON dump gives its values
    back unchanged when they are exactly str, int, bool (or None where allowed): its schema has no
    serializer, alias, exclusion, computed or extra field. None for any other class."""
    schema = cast(dict[str, Any], cls.__pydantic_core_schema__)
    fields = schema.get("schema", {})
    if (
        schema.get("type") != "model"
        or "serialization" in schema
        or fields.get("type") != "model-fields"
        or fields.get("computed_fields")
        or fields.get("extra_behavior") == "allow"
        or cls.model_config.get("serialize_by_alias")
    ):
        return None
    plain: list[tuple[str, type, bool]] = []
    for name, field_ in fields["fields"].items():
        if name == "audience":
            continue
        if any(key.startswith("serialization") for key in field_):
            return None
        node, nullable = field_["schema"], False
        while node.get("type") in ("default", "nullable") and "serialization" not in node:
            nullable = nullable or node["type"] == "nullable"
            node = node["schema"]
        if node.get("type") not in _PLAIN_TYPES or "serialization" in node:
            return None
        plain.append((name, _PLAIN_TYPES[node["type"]], nullable))
    return tuple(plain)


class Notification(Event):
    """A line in the notification tray."""

    type: ClassVar[str] = "notification"
    title: str
    body: str = ""
    link: str | None = None
    level: str = "info"


class EventLogEntry(Base):
    __tablename__ = "event_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(80), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    audience: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=clock.now, index=True)


@dataclass(frozen=True)
class Published:
    """An event as it travels on the bus and to the browser."""

    id: int
    type: str
    payload: dict[str, Any]
    audience: Audience
    created_at: str

    @cached_property
    def sse_frame(self) -> bytes:
        """The server-sent-events frame, built once however many streams carry it. A transient event
        has no id: the browser's Last-Event-ID stays on the last logged one."""
        if not self.id:
            return b"event: %s\ndata: %s\n\n" % (self.type.encode(), self.to_json())
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (self.id, self.type.encode(), self.to_json())

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "type": self.type,
                "payload": self.payload,
                "audience": self.audience.model_dump(),
                "created_at": self.created_at,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Published:
        data = orjson.loads(raw)
        return cls(
            id=data["id"],
            type=data["type"],
            payload=data["payload"],
            audience=Audience(**data["audience"]),
            created_at=data["created_at"],
        )

    @classmethod
    def from_row(cls, row: EventLogEntry) -> Published:
        return cls(
            id=row.id,
            type=row.type,
            payload=row.payload,
            audience=Audience(**row.audience),
            created_at=row.created_at.isoformat(),
        )


def transient(event_: Event) -> Published:
    """An event that matters only now (someone is typing): published at once, never logged or replayed."""
    return Published(id=0, type=event_.type, payload=event_.payload(), audience=event_.audience,
                     created_at=clock.now().isoformat())  # fmt: skip


def record(session: AsyncSession, event_: Event) -> None:
    """Queue an event on this unit of work; it goes out only if the transaction commits."""
    session.sync_session.info.setdefault(PENDING_KEY, []).append(event_)


def record_transient(session: AsyncSession, event_: Event) -> None:
    """Queue an event that is published after commit, before the logged ones, but never logged or
    replayed (what the subscriber could read from the database itself, sent along to spare it that)."""
    session.sync_session.info.setdefault(TRANSIENT_KEY, []).append(event_)


def checkpoint(session: AsyncSession) -> tuple[int, int]:
    """How many events are queued now; `rollback_to` drops those queued after (for a savepoint that
    is rolled back)."""
    info = session.sync_session.info
    return len(info.get(PENDING_KEY, [])), len(info.get(TRANSIENT_KEY, []))


def rollback_to(session: AsyncSession, mark: tuple[int, int]) -> None:
    info = session.sync_session.info
    del info.get(PENDING_KEY, [])[mark[0] :]
    del info.get(TRANSIENT_KEY, [])[mark[1] :]


Subscriber = Callable[[Published], None]


@dataclass
class Bus:
    """Local fan-out. `publish` is what the after-commit hook calls."""

    subscribers: set[Subscriber] = field(default_factory=set)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self.subscribers.add(callback)
        return lambda: self.subscribers.discard(callback)

    def deliver(self, published: Published) -> None:
        for callback in list(self.subscribers):
            try:
                callback(published)
            except Exception:
                log.exception("event subscriber failed", extra={"event_type": published.type})

    async def publish(self, published: list[Published]) -> None:
        for item in published:
            self.deliver(item)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisBus(Bus):
    """Delivers to this node's subscribers at once (a writer reads its own writes) and publishes to a
    Redis channel for the other nodes, which deliver what the channel carries from elsewhere."""

    channel = "patientline:events"

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url)
        self.node = uuid.uuid4().hex.encode()
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def publish(self, published: list[Published]) -> None:
        for item in published:
            self.deliver(item)
        try:
            for item in published:
                await self.redis.publish(self.channel, self.node + b" " + item.to_json())
        except Exception:
            # other nodes miss these live; their browsers still get them by replay on reconnect
            log.exception("could not publish events to Redis", extra={"event_ids": [p.id for p in published]})

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        origin, _, body = bytes(message["data"]).partition(b" ")
                        if origin != self.node:
                            self.deliver(Published.from_json(body))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis event listener lost its connection; reconnecting")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.redis.aclose()


def make_bus(redis_url: str) -> Bus:
    return RedisBus(redis_url) if redis_url else Bus()


def _insert_log(session: Session, rows: list[tuple[str, dict[str, Any], dict[str, Any]]], at: datetime) -> list[int]:
    """Writes the log rows (type, payload, audience), created `at`, in one statement without
    SQLAlchemy's work per row (a sweep logs thousands of events in one commit), and returns their ids
    in the order given. Each value still goes through its column's bind processing.

    SQLite: one executemany; SQLite numbers each new row max(id) + 1 and the statement holds the write
    lock, so the ids run up to the last one. PostgreSQL: one INSERT ... SELECT FROM unnest(arrays) in
    the rows' order, RETURNING the ids, which the sequence hands out in that order (SQLAlchemy's batched
    INSERT ... RETURNING relies on the same). Elsewhere: SQLAlchemy's batched INSERT ... RETURNING."""
    table = cast(Table, EventLogEntry.__table__)
    connection = session.connection()
    dialect = connection.dialect
    payload_json, audience_json, stamp = (
        _processor(table.c[name], dialect) for name in ("payload", "audience", "created_at")
    )
    if dialect.name == "sqlite":
        created = stamp(at)
        connection.exec_driver_sql(
            "INSERT INTO event_log (type, payload, audience, created_at) VALUES (?, ?, ?, ?)",
            [(type_, payload_json(payload), audience_json(audience), created) for type_, payload, audience in rows],
        )
        last = int(connection.exec_driver_sql("SELECT last_insert_rowid()").scalar_one())
        return list(range(last - len(rows) + 1, last + 1))
    if dialect.name == "postgresql":
        statement = text(
            "INSERT INTO event_log (type, payload, audience, created_at) SELECT t, p, a, :created_at "
            "FROM unnest(CAST(:types AS VARCHAR[]), CAST(:payloads AS JSON[]), CAST(:audiences AS JSON[])) "
            "WITH ORDINALITY AS v(t, p, a, n) ORDER BY n RETURNING id"
        ).bindparams(
            bindparam("types", type_=ARRAY(String)),
            bindparam("payloads", type_=ARRAY(Text)),
            bindparam("audiences", type_=ARRAY(Text)),
            bindparam("created_at", type_=table.c.created_at.type),
        )
        arrays = {
            "types": [type_ for type_, _, _ in rows],
            "payloads": [payload_json(payload) for _, payload, _ in rows],
            "audiences": [audience_json(audience) for _, _, audience in rows],
            "created_at": at,
        }
        return sorted(connection.execute(statement, arrays).scalars())
    values = [
        {"type": type_, "payload": payload, "audience": audience, "created_at": at} for type_, payload, audience in rows
    ]
    return list(session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), values))


def _processor(column: ColumnElement[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """What SQLAlchemy does to a value bound to this column on this database."""
    return column.type.dialect_impl(dialect).bind_processor(dialect) or _same


def _same(value: Any) -> Any:
    return value


@event.listens_for(UnitOfWork, "before_commit")
def _write_log(session: Session) -> None:
    pending: list[Event] = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    now = clock.now()
    audiences: dict[int, dict[str, Any]] = {}  # events often share an audience object: dumped once
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for e in pending:
        audience = audiences.get(id(e.audience))
        if audience is None:
            audience = audiences[id(e.audience)] = e.audience.model_dump()
        rows.append((e.type, e.payload(), audience))
    ids = _insert_log(session, rows, now)
    created_at = now.isoformat()
    published = [
        Published(id=id_, type=type_, payload=payload, audience=e.audience, created_at=created_at)
        for id_, (type_, payload, _), e in zip(ids, rows, pending, strict=True)
    ]
    session.info.setdefault(LOGGED_KEY, []).extend(published)


@event.listens_for(UnitOfWork, "after_commit")
def _publish(session: Session) -> None:
    published: list[Published] = [transient(e) for e in session.info.pop(TRANSIENT_KEY, [])]
    published += session.info.pop(LOGGED_KEY, [])
    bus: Bus | None = session.info.get("bus")
    if published and bus is not None:
        task = asyncio.get_running_loop().create_task(bus.publish(published))
        _in_flight.add(task)
        task.add_done_callback(_in_flight.discard)


@event.listens_for(UnitOfWork, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)
    session.info.pop(LOGGED_KEY, None)
    session.info.pop(TRANSIENT_KEY, None)


_in_flight: set[asyncio.Task[None]] = set()


async def replay(session: AsyncSession, *, after_id: int, limit: int = 500) -> list[Published]:
    rows = await session.scalars(
        select(EventLogEntry).where(EventLogEntry.id > after_id).order_by(EventLogEntry.id).limit(limit)
    )
    return [Published.from_row(r) for r in rows]


async def last_event_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(EventLogEntry.id), 0))) or 0)


class Subscription:
    """A bounded queue fed by the bus (or by a `Keyed` fan-out). A reader that falls too far behind is
    marked `overflowed` and should end its stream: the browser reconnects with Last-Event-ID and replays
    from the log."""

    def __init__(
        self,
        bus: Bus | None,
        maxsize: int = 1000,
        wanted: Callable[[Published], bool] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.queue: asyncio.Queue[Published] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False
        self._wanted = wanted
        self._unsubscribe = bus.subscribe(self.put) if bus is not None else (on_close or (lambda: None))

    def put(self, item: Published) -> None:
        """Runs for every event on the bus: what the reader does not want never wakes it (with hundreds
        of streams open, waking each for every event costs more than the events themselves)."""
        if self._wanted is not None and not self._wanted(item):
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    def close(self) -> None:
        self._unsubscribe()


class Keyed:
    """One bus subscriber handing each event of `types` to the subscriptions opened for the value of its
    payload's `key` (a conversation): with thousands of streams open, an event wakes and costs only its
    own readers."""

    def __init__(self, bus: Bus, *, types: frozenset[str], key: str) -> None:
        self.types, self.key = types, key
        self.readers: dict[Any, set[Subscription]] = {}
        bus.subscribe(self._deliver)

    def open(self, value: Any, maxsize: int = 100) -> Subscription:
        readers = self.readers.setdefault(value, set())
        subscription = Subscription(None, maxsize, on_close=lambda: self._close(value, subscription))
        readers.add(subscription)
        return subscription

    def _close(self, value: Any, subscription: Subscription) -> None:
        readers = self.readers.get(value)
        if readers is not None:
            readers.discard(subscription)
            if not readers:
                del self.readers[value]

    def _deliver(self, item: Published) -> None:
        if item.type in self.types:
            for subscription in list(self.readers.get(item.payload.get(self.key), ())):
                subscription.put(item)
