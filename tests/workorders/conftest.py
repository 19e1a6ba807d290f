from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from wo_base import Centre, set_up_centre

from helpers import Client


@pytest.fixture
async def centre(admin: Client) -> Centre:
    return await set_up_centre(admin)


@pytest.fixture
async def agent(as_user: Any) -> AsyncIterator[Client]:
    async with as_user("agent01", ["agent"]) as client:
        yield client


@pytest.fixture
async def supervisor(as_user: Any) -> AsyncIterator[Client]:
    async with as_user("super1", ["supervisor"]) as client:
        yield client


@pytest.fixture
async def cardiology(as_user: Any, centre: Centre) -> AsyncIterator[Client]:
    async with as_user("handler-xnk", ["handler"], department_ids=[centre.departments["XNK"]]) as client:
        yield client


@pytest.fixture
async def gastro(as_user: Any, centre: Centre) -> AsyncIterator[Client]:
    async with as_user("handler-xhnk", ["handler"], department_ids=[centre.departments["XHNK"]]) as client:
        yield client
