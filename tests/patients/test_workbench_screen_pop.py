"""The screen pop: an agent accepts a routed call with the caller's number; the accept answers the contact
made for it (once, however often it is asked), whose workbench page shows the family sharing the number;
completing the task ends the contact. The routing engine runs in the app (the router role)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from helpers import Client, assert_error
from patientline.core import clock
from patientline.core.config import Settings

MONDAY_MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
FAMILY_PHONE = "13900002222"


@pytest.fixture(autouse=True)
def monday_morning() -> Iterator[None]:
    clock.set_now(MONDAY_MORNING)
    yield
    clock.set_now(None)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        var_dir=tmp_path / "var",
        roles="web,router",
        redis_url="",
        his_adapter="off",
        _env_file=None,
    )  # type: ignore[call-arg]


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@asynccontextmanager
async def english(as_user: Any, username: str, roles: list[str]) -> AsyncIterator[Client]:
    async with as_user(username, roles) as client:
        client.http.cookies.set("pl_lang", "en")
        yield client


async def ringing_call(admin: Client, agent: Client, phone: str | None) -> dict[str, Any]:
    """A queue with the agent in it, the agent ready, and a call ringing for them."""
    queue = await ok(await admin.post("/api/routing/queues",
                                      json={"code": "GENERAL", "name": "综合咨询", "wrap_up": "none", "wrap_up_s": 0}),
                     201)  # fmt: skip
    me = await ok(await agent.get("/api/auth/me"))
    await ok(await admin.put(f"/api/routing/queues/{queue['id']}/members", json=[{"user_id": me["id"], "tier": 1}]))
    await ok(await agent.post("/api/routing/me/login"))
    await ok(await agent.post("/api/routing/me/ready"))
    caller: dict[str, Any] = {"name": "王先生"} | ({"phone": phone} if phone else {})
    task: dict[str, Any] = await ok(await admin.post("/api/routing/tasks", json={
        "queue_id": queue["id"], "channel": "voice", "caller": caller, "subject": "问检查结果",
    }), 201)  # fmt: skip
    assert task["state"] == "offered", task
    return task


async def test_accepting_a_call_pops_the_callers_family_and_completing_ends_the_contact(
    admin: Client, as_user: Any
) -> None:
    async with english(as_user, "agent01", ["agent"]) as agent:
        people = []
        for name, birth in (("王建军", "1979-05-06"), ("刘芳", "1981-02-03"), ("王乐乐", "2012-08-09")):
            people.append(await ok(await agent.post("/api/patients", json={
                "name": name, "birth_date": birth, "phones": [FAMILY_PHONE]}), 201))  # fmt: skip
        task = await ringing_call(admin, agent, FAMILY_PHONE)

        accepted = await ok(await agent.post(f"/api/routing/tasks/{task['id']}/accept"))
        assert accepted["state"] == "active" and isinstance(accepted["contact_id"], int)
        contact_id = accepted["contact_id"]
        contact = await ok(await agent.get(f"/api/contacts/{contact_id}"))
        assert contact["routing_task_id"] == task["id"] and contact["phone_masked"] == "139****2222"
        assert contact["patient_id"] is None and contact["ended_at"] is None

        pop = await agent.get(f"/workbench/contacts/{contact_id}")
        assert pop.status_code == 200, pop.text
        assert pop.text.count('data-testid="wb-candidate"') == 3
        for person in people:
            assert f"/workbench/patients/{person['id']}?contact={contact_id}" in pop.text
        assert FAMILY_PHONE not in pop.text.replace(f'data-caller-phone="+86{FAMILY_PHONE}"', "")  # masked on screen

        verified = await agent.post(f"/api/patients/{people[2]['id']}/verify",
                                    json={"birth_date": "2012-08-09", "contact_id": contact_id})  # fmt: skip
        assert verified.status_code == 200, verified.text
        following = await agent.get(f"/workbench/contacts/{contact_id}", follow_redirects=False)
        assert following.headers["location"] == f"/workbench/patients/{people[2]['id']}?contact={contact_id}"

        done = await ok(await agent.post(f"/api/routing/tasks/{task['id']}/complete", json={}))
        assert done["state"] == "done"
        ended = await ok(await agent.get(f"/api/contacts/{contact_id}"))
        assert ended["ended_at"] is not None and ended["patient_id"] == people[2]["id"]


async def test_the_accept_answers_the_same_contact_once_and_refusals_stay_refusals(
    app: Any, admin: Client, as_user: Any
) -> None:
    async with english(as_user, "agent01", ["agent"]) as agent, english(as_user, "agent02", ["agent"]) as other:
        task = await ringing_call(admin, agent, None)  # a caller without a number
        assert_error(await other.post(f"/api/routing/tasks/{task['id']}/accept"), 404)  # not in routing: refused
        accepted = await ok(await agent.post(f"/api/routing/tasks/{task['id']}/accept"))
        pop = await agent.get(f"/workbench/contacts/{accepted['contact_id']}")
        assert pop.status_code == 200 and "number withheld" in pop.text and "data-wb-register" in pop.text
        twice = await agent.post(f"/api/routing/tasks/{task['id']}/accept")  # accepted already: refused
        assert_error(twice, twice.status_code)
        assert twice.status_code in (404, 409)

        from sqlalchemy import func, select

        from patientline.contacts.models import Contact

        async with app.state.pl.db.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(Contact).where(
                Contact.routing_task_id == task["id"]))  # fmt: skip
        assert count == 1
