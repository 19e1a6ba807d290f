"""Two nodes sharing a database and Redis: a publish on one is found by the other's search index,
which was built before the publish, so the change travelled as an event (bench/knowledge_cluster.py
measures how fast)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from helpers import Client
from patientline.core.config import Settings
from patientline.web.app import create_app

REDIS_URL = os.environ.get("PATIENTLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@asynccontextmanager
async def node(settings: Settings, username: str) -> AsyncIterator[Client]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=("10.1.2.3", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            client = Client(http)
            assert (await client.login(username)).status_code == 200
            yield client


async def found(client: Client, q: str) -> list[int]:
    response = await client.get("/api/kb/search", params={"q": q})
    assert response.status_code == 200, response.text
    return [hit["item_id"] for hit in response.json()["hits"]]


async def test_a_publish_on_one_node_is_searchable_on_the_other(
    settings: Settings, make_user: Any, backend: str
) -> None:
    if backend == "sqlite":
        pytest.skip("a cluster shares PostgreSQL")
    await make_user("editor", ["admin"])
    clustered = settings.model_copy(update={"redis_url": REDIS_URL})
    async with node(clustered, "editor") as writer, node(clustered, "editor") as reader:
        assert await found(reader, "核磁共振检查前要注意什么") == []  # node B builds its (empty) index now
        category = (await writer.post("/api/kb/categories", json={"code": "EXAM", "name": "检查"})).json()
        item = (
            await writer.post(
                "/api/kb/items", json={"category_id": category["id"], "question": "磁共振检查前要注意什么？"}
            )
        ).json()
        submitted = (await writer.post(f"/api/kb/items/{item['id']}/transitions/submit", json={"version": 1})).json()
        published = await writer.post(
            f"/api/kb/items/{item['id']}/transitions/publish", json={"version": submitted["version"]}
        )
        assert published.status_code == 200, published.text
        for _ in range(100):  # bounded: the event normally arrives within milliseconds
            if item["id"] in await found(reader, "核磁共振检查前要注意什么"):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("node B never saw the published item")
