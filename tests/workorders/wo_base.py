"""Shared set-up for work-order tests: a site with departments, the complaint and callback types, and
logged-in clients for an agent, a supervisor and the departments' handlers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from helpers import Client
from patientline.core import clock

SHANGHAI = ZoneInfo("Asia/Shanghai")
COMPLAINT_FIELDS = [
    {"key": "visit_date", "label": "就诊日期", "kind": "date", "required": True},
    {"key": "severity", "label": "严重程度", "kind": "choice", "choices": ["一般", "严重"]},
]


def local(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=SHANGHAI)  # type: ignore[misc]


async def travel(moment: datetime, **clients: Client) -> None:
    """Moves the clock and logs the named users in again (a long jump outlives their sessions)."""
    clock.set_now(moment)
    for username, client in clients.items():
        assert (await client.login(username.replace("_", "-"))).status_code == 200


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@dataclass
class Centre:
    admin: Client
    site_id: int
    departments: dict[str, int]
    complaint_type: int
    callback_type: int


async def department(admin: Client, site_id: int, code: str, name: str) -> int:
    body = await ok(
        await admin.post("/api/directory/departments", json={"code": code, "name": name, "site_id": site_id}), 201
    )
    return int(body["id"])


async def make_type(admin: Client, **fields: Any) -> dict[str, Any]:
    body = {
        "code": "complaint",
        "name": "投诉",
        "group": "complaint",
        "fields": COMPLAINT_FIELDS,
        "categories": ["服务态度", "医疗质量", "收费"],
    } | fields
    created: dict[str, Any] = await ok(await admin.post("/api/workorders/types", json=body), 201)
    return created


async def set_up_centre(admin: Client) -> Centre:
    site = await ok(await admin.post("/api/directory/sites", json={"code": "MAIN", "name": "本部"}), 201)
    departments = {
        code: await department(admin, site["id"], code, name)
        for code, name in (("XNK", "心内科"), ("XHNK", "消化内科"), ("YWB", "医务部"))
    }
    complaint = await make_type(admin)
    callback = await make_type(
        admin,
        code="callback",
        name="回电",
        group="callback",
        fields=[],
        categories=[],
        policy={"reply": None, "result": {"amount": 8, "unit": "working_hours"}, "call_back_on_reply": True},
    )
    return Centre(admin, site["id"], departments, complaint["id"], callback["id"])


def complaint_body(centre: Centre, **fields: Any) -> dict[str, Any]:
    return {
        "type_id": centre.complaint_type,
        "category": "服务态度",
        "subject": "挂号窗口态度差",
        "description": "患者反映挂号窗口工作人员态度生硬。",
        "values": {"visit_date": "2026-11-20"},
        "caller_name": "张先生",
        "caller_phone": "13812345678",
        "department_id": centre.departments["XNK"],
    } | fields


async def create_order(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = await ok(await client.post("/api/workorders", json=body), 201)
    return created


async def step(client: Client, order: dict[str, Any], name: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/api/workorders/{order['id']}/{name}", json={"version": order["version"], **body})
    result: dict[str, Any] = await ok(response)
    return result
