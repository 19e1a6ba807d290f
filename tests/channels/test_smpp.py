"""The SMPP adapter against a real SMSC from PyPI (smppy), on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from outbox import message, run_jobs, send
from smsc import SMSC, RunningSMSC, free_port

from patientline.channels import delivery, optouts, policy, sms_templates
from patientline.channels.demo import EDITOR
from patientline.core import clock
from patientline.core.config import Settings

pytestmark = pytest.mark.usefixtures("templates")

LONG = {
    "type": "关于门诊挂号、检查预约和住院床位安排等多项服务流程的综合性投诉与建议",
    "reference": "WO-20261123-0001",
    "deadline": "11月25日17:00",
}
THROTTLED, INVALID_DESTINATION = "ESME_RTHROTTLED", "ESME_RINVDSTADR"  # smpp.pdu names statuses


@pytest.fixture
def smsc(use_settings: Callable[..., Settings]) -> Iterator[Callable[..., SMSC]]:
    running: list[RunningSMSC] = []

    def start(**options: Any) -> SMSC:
        server = RunningSMSC(**options)
        running.append(server)
        app = server.__enter__()
        use_settings(
            sms_adapter="smpp", sms_smpp_port=server.port, sms_smpp_system_id="hosp", sms_smpp_source_addr="106908585"
        )
        return app

    yield start
    for server in running:
        server.__exit__()


async def test_a_long_chinese_text_goes_as_two_ucs2_parts_and_is_delivered(db: Any, smsc: Callable[..., SMSC]) -> None:
    center = smsc(receipts="DELIVRD")
    queued = await send(db, variables=LONG)
    assert queued.parts == 2
    assert await run_jobs(db) == 1
    assert [(s.destination, s.data_coding, s.esm_class, s.registered_delivery) for s in center.submitted] == [
        ("8613800138000", 8, 0x40, 1),
        ("8613800138000", 8, 0x40, 1),
    ]
    first, second = (s.short_message for s in center.submitted)
    assert first[:3] == second[:3] == b"\x05\x00\x03" and first[4:6] == b"\x02\x01" and second[4:6] == b"\x02\x02"
    assert (first[6:] + second[6:]).decode("utf-16-be") == queued.text
    row = await message(db, queued.id)
    assert (row.provider, row.provider_ids, row.parts) == ("smpp", ["M1", "M2"], 2)
    assert row.status == "delivered"  # both receipts arrived while the session lingered


async def test_a_latin_text_is_one_gsm_part(db: Any, smsc: Callable[..., SMSC], use_settings: Any) -> None:
    center = smsc()
    use_settings(sms_adapter="smpp", sms_smpp_port=policy.settings().sms_smpp_port, sms_sign_name="")
    async with db.sessions() as session, session.begin():
        values = {
            "code": "en_resolved",
            "name": "Resolved (English)",
            "body": "Your case {reference} is resolved.",
            "variables": ["reference"],
        }
        await sms_templates.create_template(session, actor=EDITOR, values=values)
    await send(db, template="en_resolved", variables={"reference": "WO-1"})
    await run_jobs(db)
    [submitted] = center.submitted
    assert (submitted.data_coding, submitted.esm_class) == (0, 0)
    assert submitted.short_message == b"Your case WO-1 is resolved."


async def test_an_undelivered_receipt_fails_the_message(db: Any, smsc: Callable[..., SMSC]) -> None:
    smsc(receipts="UNDELIV")
    queued = await send(db)
    await run_jobs(db)
    row = await message(db, queued.id)
    assert row.status == "failed" and "UNDELIV" in (row.last_error or "")


async def test_a_reply_of_tuiding_opts_the_number_out(db: Any, smsc: Callable[..., SMSC]) -> None:
    smsc(push_on_bind=[("8613912345678", "退订")])
    await send(db)
    await run_jobs(db)
    async with db.sessions() as session:
        assert await optouts.is_opted_out(session, phone="+8613912345678")
    later = await send(db, phone="13912345678")
    assert later.suppress_reason == "opted_out"


async def test_the_inbox_sweeper_collects_replies_while_nothing_is_sent(
    db: Any, smsc: Callable[..., SMSC], settings: Settings
) -> None:
    center = smsc(push_on_bind=[("8613700137000", "TD")])
    configured = settings.model_copy(
        update={"sms_adapter": "smpp", "sms_smpp_port": policy.settings().sms_smpp_port, "sms_smpp_linger_seconds": 0.3}
    )
    async with db.sessions() as session, session.begin():
        await delivery.smpp_inbox(session, configured)
    assert center.binds == 1 and center.submitted == []
    async with db.sessions() as session:
        assert await optouts.is_opted_out(session, phone="+8613700137000")


async def test_an_invalid_destination_fails_at_once(db: Any, smsc: Callable[..., SMSC]) -> None:
    smsc(refuse_with=INVALID_DESTINATION)
    queued = await send(db)
    await run_jobs(db)
    row = await message(db, queued.id)
    assert (row.status, row.attempts) == ("failed", 1) and "0x0B" in (row.last_error or "")


async def test_throttling_is_retried(db: Any, smsc: Callable[..., SMSC]) -> None:
    center = smsc(refuse_with=THROTTLED)
    queued = await send(db)
    await run_jobs(db)
    row = await message(db, queued.id)
    assert (row.status, row.attempts) == ("sending", 1) and "0x58" in (row.last_error or "")
    center.refuse_with = None
    clock.advance(timedelta(seconds=5))
    await run_jobs(db)
    assert (await message(db, queued.id)).status == "sent"


async def test_an_smsc_that_is_down_means_a_retry(db: Any, use_settings: Any) -> None:
    use_settings(sms_adapter="smpp", sms_smpp_port=free_port())
    queued = await send(db)
    await run_jobs(db)
    row = await message(db, queued.id)
    assert row.status == "sending" and "bind failed" in (row.last_error or "")
