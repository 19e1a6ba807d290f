from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from helpers import Client


@pytest.fixture
async def agent(as_user: Any) -> AsyncIterator[Client]:
    async with as_user("agent01", ["agent"]) as client:
        yield client


@pytest.fixture
async def agent2(as_user: Any) -> AsyncIterator[Client]:
    async with as_user("agent02", ["agent"]) as client:
        yield client


@pytest.fixture
async def supervisor(as_user: Any) -> AsyncIterator[Client]:
    async with as_user("super1", ["supervisor"]) as client:
        yield client


@pytest.fixture
async def handler(as_user: Any) -> AsyncIterator[Client]:
    async with as_user("handler1", ["handler"]) as client:
        yield client
