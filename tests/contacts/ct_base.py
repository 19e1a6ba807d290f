"""Helpers for the contacts tests: a small disposition tree and contacts made through the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from helpers import Client


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@dataclass
class Tree:
    ids: dict[str, int] = field(default_factory=dict)


async def make_tree(admin: Client) -> Tree:
    """consult (挂号 / 医保 (报销)), complaint, callback (reached, no_answer)."""
    tree = Tree()

    async def add(code: str, name: str, parent: str | None = None) -> None:
        body = {"code": code, "name": name, "parent_id": tree.ids[parent] if parent else None}
        tree.ids[code] = ok(await admin.post("/api/dispositions", json=body), 201)["id"]

    await add("consult", "咨询")
    await add("consult.registration", "挂号", "consult")
    await add("consult.insurance", "医保", "consult")
    await add("consult.insurance.claims", "报销", "consult.insurance")
    await add("complaint", "投诉")
    await add("callback", "回电")
    await add("callback.reached", "已接通", "callback")
    await add("callback.no_answer", "无人接听", "callback")
    return tree


async def record(client: Client, **values: Any) -> dict[str, Any]:
    body = {"channel": "voice", "phone": "13812345678", "caller_name": "王小明", "subject": "问挂号"} | values
    data: dict[str, Any] = ok(await client.post("/api/contacts", json=body), 201)
    return data
