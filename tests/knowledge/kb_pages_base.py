"""Published knowledge for the panel and portal tests, made through the API as the admin (plain module:
fixtures live in the test files)."""

from __future__ import annotations

from typing import Any

from helpers import Client


async def category(admin: Client, code: str, name: str, parent_id: int | None = None) -> int:
    response = await admin.post("/api/kb/categories", json={"code": code, "name": name, "parent_id": parent_id})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def create_item(admin: Client, category_id: int, question: str, *, publish: bool = True, **values: Any) -> int:
    """A draft item, or (by default) one taken through review to published."""
    response = await admin.post("/api/kb/items", json={"category_id": category_id, "question": question} | values)
    assert response.status_code == 201, response.text
    item = response.json()
    for step in ("submit", "publish") if publish else ():
        response = await admin.post(f"/api/kb/items/{item['id']}/transitions/{step}", json={"version": item["version"]})
        assert response.status_code == 200, response.text
        item = response.json()
    return int(item["id"])


def html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    text: str = response.text
    return text
