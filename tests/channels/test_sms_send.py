"""sms.send: rendering, bad input, opt-outs, the rate limit, quiet hours and idempotency."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from outbox import RECEIVED, SHANGHAI, jobs_of, message, run_jobs, send

from patientline.channels import optouts, sms
from patientline.channels.models import SmsMessage
from patientline.core import clock
from patientline.core.errors import InvalidInput

pytestmark = pytest.mark.usefixtures("templates")


async def test_a_text_is_rendered_signed_and_queued_with_its_delivery_job(db: Any) -> None:
    sent = await send(db, phone="138 0013 8000", patient_id=7, related_type="work_order", related_id=42)
    assert sent.phone == "+8613800138000"
    assert sent.text == "【示例医院】您的投诉已受理，编号WO-20261123-0001，我们将在11月25日17:00前答复。"
    assert sent.status == "queued" and sent.parts == 1 and sent.variables == RECEIVED
    assert (sent.patient_id, sent.related_type, sent.related_id) == (7, "work_order", 42)
    [job] = await jobs_of(db, "sms.deliver")
    assert job.payload == {"message_id": sent.id} and job.run_at == clock.now()


async def test_a_long_chinese_text_counts_its_parts(db: Any) -> None:
    variables = RECEIVED | {"type": "关于门诊挂号、检查预约和住院床位安排等多项服务流程的综合性投诉与建议"}
    sent = await send(db, variables=variables)
    assert len(sent.text) > 70 and sent.parts == 2


@pytest.mark.parametrize(
    ("variables", "missing"),
    [
        ({"type": "投诉", "reference": "WO-1"}, ["deadline"]),
        ({"type": "投诉", "reference": "WO-1", "deadline": "  "}, ["deadline"]),
        ({}, ["type", "reference", "deadline"]),
    ],
)
async def test_a_missing_variable_is_refused(db: Any, variables: dict[str, str], missing: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        await send(db, variables=variables)
    assert caught.value.details == {"variables": missing}
    assert "wo_received" in caught.value.localized_message(str)


async def test_extra_variables_are_not_stored_and_values_are_bounded(db: Any) -> None:
    sent = await send(db, variables=RECEIVED | {"unused": "x"})
    assert "unused" not in sent.variables
    with pytest.raises(InvalidInput):
        await send(db, variables=RECEIVED | {"type": "投" * 201})
    with pytest.raises(InvalidInput):
        await send(db, variables=RECEIVED | {"type": "投\x00诉"})


async def test_unknown_and_inactive_templates_are_refused(db: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        await send(db, template="no_such_template")
    assert caught.value.details == {"template": ["unknown"]}
    async with db.sessions() as session, session.begin():
        row = await sms.sms_templates.find_template(session, code="wo_resolved")
        assert row is not None
        row.is_active = False
    with pytest.raises(InvalidInput):
        await send(db, template="wo_resolved", variables={"type": "投诉", "reference": "WO-1"})


@pytest.mark.parametrize(
    ("phone", "problem"),
    [("not a number", "invalid"), ("1380013800", "invalid"), ("010-6555 0000", "not_mobile"), ("", "invalid")],
)
async def test_bad_numbers_are_refused_with_a_clear_message(db: Any, phone: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await send(db, phone=phone)
    assert caught.value.status_code == 422 and caught.value.details == {"phone": [problem]}
    assert await jobs_of(db, "sms.deliver") == []


async def test_numbers_abroad_are_accepted_in_e164(db: Any) -> None:
    sent = await send(db, phone="+852 5123 4567")
    assert sent.phone == "+85251234567"


async def test_an_opted_out_number_gets_a_suppressed_record_and_nothing_is_sent(db: Any) -> None:
    async with db.sessions() as session, session.begin():
        await optouts.take_reply(session, phone="+8613800138000", text=" 退订 ")
    sent = await send(db)
    assert (sent.status, sent.suppress_reason) == ("suppressed", "opted_out")
    assert await jobs_of(db, "sms.deliver") == []


async def test_the_rate_limit_counts_patient_texts_per_number_over_a_rolling_day(db: Any) -> None:
    for _ in range(5):
        assert (await send(db)).status == "queued"
        clock.advance(timedelta(hours=1))
    limited = await send(db)
    assert (limited.status, limited.suppress_reason) == ("suppressed", "rate_limited")
    staff = await send(db, template="dept_new_order", variables=RECEIVED | {"department": "心内科"})
    assert staff.status == "queued"  # work messages to staff are not limited
    assert (await send(db, phone="13912345678")).status == "queued"  # another number
    clock.advance(timedelta(hours=20))  # the first text is now more than 24 hours old
    assert (await send(db)).status == "queued"


async def test_the_rate_limit_also_counts_per_patient_across_numbers(db: Any, use_settings: Any) -> None:
    use_settings(sms_rate_limit=2)
    await send(db, phone="13800138000", patient_id=9)
    await send(db, phone="13912345678", patient_id=9)
    third = await send(db, phone="13700137000", patient_id=9)
    assert third.suppress_reason == "rate_limited"


@pytest.mark.parametrize(
    ("local", "until"),
    [
        (datetime(2026, 11, 23, 22, 30, tzinfo=SHANGHAI), datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)),
        (datetime(2026, 11, 24, 6, 15, tzinfo=SHANGHAI), datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)),
    ],
)
async def test_patient_texts_in_quiet_hours_are_held_until_they_end(db: Any, local: datetime, until: datetime) -> None:
    clock.set_now(local)
    held = await send(db)
    assert held.status == "held" and held.send_after == until
    [job] = await jobs_of(db, "sms.deliver")
    assert job.run_at == until
    assert await run_jobs(db) == 0
    clock.set_now(until)
    assert await run_jobs(db) == 1
    assert (await message(db, held.id)).status == "sent"


async def test_staff_texts_and_evenings_outside_quiet_hours_go_at_once(db: Any, use_settings: Any) -> None:
    clock.set_now(datetime(2026, 11, 23, 23, 0, tzinfo=SHANGHAI))
    staff = await send(
        db,
        template="dept_escalation",
        variables={"department": "心内科", "reference": "WO-1", "overdue": "2小时", "level": "二级"},
    )
    assert staff.status == "queued"
    use_settings(sms_quiet_hours="")
    assert (await send(db)).status == "queued"
    use_settings(sms_quiet_hours="12:00-14:00")
    clock.set_now(datetime(2026, 11, 23, 12, 30, tzinfo=SHANGHAI))
    lunch = await send(db, phone="13912345678")
    assert lunch.send_after == datetime(2026, 11, 23, 14, 0, tzinfo=SHANGHAI)


async def test_the_same_idempotency_key_returns_the_first_message(db: Any) -> None:
    first = await send(db, idempotency_key="wo-42-received")
    again = await send(db, idempotency_key="wo-42-received", variables=RECEIVED | {"type": "建议"})
    assert again.id == first.id and again.text == first.text
    assert len(await jobs_of(db, "sms.deliver")) == 1


async def test_two_sends_with_one_key_in_parallel_transactions_make_one_message(db: Any, backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: the second transaction waits for the first")
    arguments: dict[str, Any] = {"phone": "13800138000", "template": "wo_received", "variables": RECEIVED}
    async with db.sessions() as first, db.sessions() as second:
        await first.begin()
        await second.begin()
        one = await sms.send(first, **arguments, idempotency_key="race")
        racing = asyncio.create_task(sms.send(second, **arguments, idempotency_key="race"))
        await asyncio.sleep(0.3)  # the second insert now waits on the unique key
        await first.commit()
        other = await asyncio.wait_for(racing, 10)
        await second.commit()
    assert one.id == other.id
    assert len(await jobs_of(db, "sms.deliver")) == 1


async def test_references_are_checked(db: Any) -> None:
    for bad in ({"related_id": 0}, {"patient_id": 2**40}, {"related_type": "x" * 41}, {"idempotency_key": ""}):
        with pytest.raises(InvalidInput):
            await send(db, **bad)


async def test_what_was_sent_about_a_record_is_listed_for_its_domain(db: Any) -> None:
    first = await send(db, related_type="work_order", related_id=42)
    await send(db, related_type="work_order", related_id=43)
    second = await send(
        db,
        template="wo_resolved",
        related_type="work_order",
        related_id=42,
        variables={"type": "投诉", "reference": "WO-1"},
    )
    async with db.sessions() as session:
        rows = await sms.messages_for(session, related_type="work_order", related_id=42)
    assert [r.id for r in rows] == [first.id, second.id]
    assert all(isinstance(r, SmsMessage) for r in rows)
