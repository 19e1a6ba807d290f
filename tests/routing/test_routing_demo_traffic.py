"""The demo's made-up callers: they join open queues with room, at most a few waiting per queue, hang
up after waiting too long, and stay out of closed queues."""

from __future__ import annotations

from typing import Any

from rt_engine_base import (
    advance,
    engine_of,
    make_queue,
    monday_morning,  # noqa: F401 - fixture
    settings,  # noqa: F401 - fixture
)
from sqlalchemy import select

from helpers import Client
from patientline.routing.demo_traffic import REF_PREFIX, DemoTraffic
from patientline.routing.models import QueueLogEntry, RoutingTask


async def rows(app: Any, model: Any) -> list[Any]:
    async with app.state.pl.db.sessions() as session:
        return list(await session.scalars(select(model).order_by(model.id)))


async def test_callers_fill_open_queues_up_to_the_limit_and_the_impatient_hang_up(app: Any, admin: Client) -> None:
    engine = engine_of(app)
    hotline = await make_queue(admin, code="hotline", name="热线")
    await make_queue(admin, code="night", name="夜间", hours="00:00-06:00")  # closed at 10:00
    traffic = DemoTraffic(engine, max_waiting=2, patience_s=120)

    for _ in range(4):
        await traffic.step()
    tasks = await rows(app, RoutingTask)
    assert len(tasks) == 2  # nobody answers: the hotline fills to its limit, the night queue is closed
    assert {t.queue_id for t in tasks} == {hotline["id"]}
    assert all(t.state == "waiting" and t.external_ref.startswith(REF_PREFIX) for t in tasks)
    assert all(t.caller["phone_masked"] and "*" in t.caller["phone_masked"] for t in tasks)

    await advance(engine, 121)
    await traffic.step()  # both hang up, and a new caller takes a place
    states = [t.state for t in await rows(app, RoutingTask)]
    assert states == ["abandoned", "abandoned", "waiting"]
    abandons = [line for line in await rows(app, QueueLogEntry) if line.event == "abandon"]
    assert len(abandons) == 2 and all(line.wait_s >= 120 for line in abandons)
