"""The demo contacts: the tree, two weeks of coded contacts, the handovers; loading twice adds nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from helpers import Client
from patientline.contacts.demo import load_demo_contacts
from patientline.contacts.models import Contact, DispositionCode, ShiftHandover


async def test_the_demo_loads_once(make_user: Any, db: Any, agent: Client) -> None:
    await make_user("supervisor1", ["supervisor"])
    await make_user("agent02", ["agent"])
    async with db.sessions() as session, session.begin():
        said = await load_demo_contacts(session)
    assert "disposition codes" in said
    async with db.sessions() as session, session.begin():
        assert await load_demo_contacts(session) == "contacts already loaded"
    async with db.sessions() as session:
        codes = await session.scalar(select(func.count()).select_from(DispositionCode))
        contacts = await session.scalar(select(func.count()).select_from(Contact))
        handovers = list(await session.scalars(select(ShiftHandover)))
    assert codes and codes > 30 and contacts and contacts > 100
    assert len(handovers) == 3 and sum(1 for row in handovers if row.acknowledged_at is None) == 1
    listed = (await agent.get("/api/contacts?limit=200")).json()
    assert listed["total"] == contacts
    closed = [row for row in listed["items"] if row["status"] == "closed"]
    assert closed and all(row["disposition_ids"] for row in closed)
    assert {row["channel"] for row in listed["items"]} >= {"voice", "chat", "wechat"}
    pending = (await agent.get("/api/handovers?pending=true")).json()["items"]
    assert len(pending) == 1 and pending[0]["pending"] == 3
    page = (await agent.get("/contacts")).text
    assert "data-handover-notice" in page
