"""Channels tests run at a fixed daytime moment at the hospital, with the demo templates and with
settings of their own (`use_settings(...)` changes them for one test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from outbox import MORNING, RECEIPT_SECRET
from pydantic import SecretStr

from patientline.channels import policy
from patientline.channels.demo import load_demo_channels
from patientline.core import clock
from patientline.core.config import Settings


@pytest.fixture(autouse=True)
def use_settings(settings: Settings) -> Iterator[Callable[..., Settings]]:
    def use(**changes: Any) -> Settings:
        defaults: dict[str, Any] = {
            "sms_sign_name": "示例医院",
            "sms_quiet_hours": "21:00-08:00",
            "sms_receipt_secret": SecretStr(RECEIPT_SECRET),
            "sms_smpp_timeout_seconds": 3.0,
            "sms_smpp_linger_seconds": 0.3,
        }
        configured = settings.model_copy(update=defaults | changes)
        policy.configure(configured)
        return configured

    use()
    clock.set_now(MORNING)
    yield use
    policy.configure(None)


@pytest.fixture
async def templates(db: Any) -> None:
    async with db.sessions() as session, session.begin():
        await load_demo_channels(session)
