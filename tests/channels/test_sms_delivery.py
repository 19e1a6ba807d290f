"""The delivery job: through the development sink, retries and permanent failures, receipts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from outbox import event_types, jobs_of, message, run_jobs, send

from patientline.channels import delivery, gateways, optouts
from patientline.channels.gateways import OutboundSms, PermanentFailure, Receipt, Reply, SendResult, TemporaryFailure
from patientline.core import clock
from patientline.core.auth.actor import SYSTEM

pytestmark = pytest.mark.usefixtures("templates")


@dataclass
class ScriptedGateway:
    """Fails as scripted, then accepts."""

    failures: list[Exception] = field(default_factory=list)
    sent: list[OutboundSms] = field(default_factory=list)
    name: str = "scripted"
    simulates_receipts: bool = False

    async def send(self, message: OutboundSms) -> SendResult:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)
        return SendResult(provider=self.name, refs=[f"S{message.message_id}"], parts=1)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedGateway:
    gateway = ScriptedGateway()
    monkeypatch.setattr(gateways, "sms_gateway", lambda settings: gateway)
    return gateway


async def test_the_sink_marks_a_text_sent_and_shortly_after_delivered(db: Any) -> None:
    queued = await send(db, related_type="work_order", related_id=42)
    assert await run_jobs(db) == 1
    sent = await message(db, queued.id)
    assert (sent.status, sent.provider, sent.provider_ids, sent.attempts) == ("sent", "sink", [f"sink-{queued.id}"], 1)
    assert sent.sent_at == clock.now() and sent.delivered_at is None
    assert await run_jobs(db) == 0  # the receipt comes a little later
    clock.advance(timedelta(seconds=3))
    assert await run_jobs(db) == 1
    delivered = await message(db, queued.id)
    assert delivered.status == "delivered" and delivered.delivered_at == clock.now()
    assert [t for t in await event_types(db) if t.startswith("sms.")] == ["sms.sent", "sms.delivered"]


async def test_a_number_that_opted_out_after_queueing_is_not_sent_to(db: Any, scripted: ScriptedGateway) -> None:
    queued = await send(db)
    async with db.sessions() as session, session.begin():
        await optouts.take_reply(session, phone="13800138000", text="TD")
    await run_jobs(db)
    row = await message(db, queued.id)
    assert (row.status, row.suppress_reason) == ("suppressed", "opted_out") and scripted.sent == []


async def test_running_the_delivery_twice_sends_once(db: Any, scripted: ScriptedGateway) -> None:
    queued = await send(db)
    for _ in range(2):
        async with db.sessions() as session, session.begin():
            await delivery.deliver(session, {"message_id": queued.id})
    assert len(scripted.sent) == 1
    async with db.sessions() as session, session.begin():
        await delivery.deliver(session, {"message_id": 999_999})  # gone: nothing to do


async def test_passing_failures_are_retried_with_backoff_and_shown_on_the_message(
    db: Any, scripted: ScriptedGateway
) -> None:
    scripted.failures = [TemporaryFailure("SMSC throttled us")]
    queued = await send(db)
    await run_jobs(db)
    row = await message(db, queued.id)
    assert (row.status, row.attempts, row.last_error) == ("sending", 1, "SMSC throttled us")
    [job] = await jobs_of(db, "sms.deliver")
    assert job.status == "pending" and job.run_at > clock.now()
    clock.advance(timedelta(seconds=5))
    await run_jobs(db)
    row = await message(db, queued.id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


async def test_a_text_fails_for_good_when_its_attempts_are_used_up(
    db: Any, scripted: ScriptedGateway, use_settings: Any
) -> None:
    use_settings(sms_max_attempts=2)
    scripted.failures = [TemporaryFailure("down"), TemporaryFailure("still down")]
    queued = await send(db)
    await run_jobs(db)
    clock.advance(timedelta(minutes=1))
    await run_jobs(db)
    row = await message(db, queued.id)
    assert (row.status, row.attempts) == ("failed", 2) and "still down" in (row.last_error or "")
    [job] = await jobs_of(db, "sms.deliver")
    assert job.status == "done"  # the message records the failure; no dead letter to clear
    assert "sms.failed" in await event_types(db)


async def test_a_permanent_failure_is_not_retried(db: Any, scripted: ScriptedGateway) -> None:
    scripted.failures = [PermanentFailure("invalid destination", code="0x0B")]
    queued = await send(db)
    await run_jobs(db)
    row = await message(db, queued.id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "invalid destination")
    clock.advance(timedelta(hours=1))
    assert await run_jobs(db) == 0 and scripted.sent == []


async def test_receipts_for_every_part_decide_the_outcome(db: Any) -> None:
    queued = await send(db)
    async with db.sessions() as session, session.begin():
        row = await session.get(delivery.SmsMessage, queued.id)
        assert row is not None
        await delivery._sent(session, row, SendResult(provider="smpp", refs=["A1", "A2"], parts=2))
    async with db.sessions() as session, session.begin():
        assert await delivery.apply_receipt(session, Receipt("smpp", "A1", delivered=True))
        assert not await delivery.apply_receipt(session, Receipt("smpp", "unknown", delivered=True))
    assert (await message(db, queued.id)).status == "sent"  # one part of two
    async with db.sessions() as session, session.begin():
        await delivery.take_inbound(session, [Receipt("smpp", "A2", delivered=False, error="UNDELIV err:001")])
    failed = await message(db, queued.id)
    assert failed.status == "failed" and "UNDELIV" in (failed.last_error or "")
    async with db.sessions() as session, session.begin():  # a late or repeated receipt changes nothing
        await delivery.take_inbound(session, [Receipt("smpp", "A2", delivered=True)])
    assert (await message(db, queued.id)).status == "failed"


async def test_replies_that_are_not_unsubscribe_words_change_nothing(db: Any) -> None:
    async with db.sessions() as session, session.begin():
        await delivery.take_inbound(
            session, [Reply("+8613800138000", "5"), Reply("+8613800138000", "谢谢"), Reply("+86123", "TD")]
        )
        assert not await optouts.is_opted_out(session, phone="+8613800138000")
        await delivery.take_inbound(session, [Reply("+8613800138000", "ｔｄ。")])  # full-width, with a full stop
        assert await optouts.is_opted_out(session, phone="+8613800138000")
        again = await optouts.opt_out(
            session, actor=SYSTEM, phone="13800138000", source=optouts.OptOutSource.PATIENT_REPLY
        )
        assert again.source == "patient_reply"
