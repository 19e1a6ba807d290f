"""The worker's side of the SMS outbox: the delivery job, delivery receipts and patients' replies
(from any adapter), and the SMPP inbox sweeper.

Delivery is at least once: a worker that dies after the provider accepted a text but before its
transaction commits leaves the job to be run again, and the text goes out twice."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import gateways, optouts, policy
from patientline.channels.events import MESSAGING, SmsDelivered, SmsFailed, SmsSent
from patientline.channels.gateways import OutboundSms, PermanentFailure, Receipt, Reply, SendResult, TemporaryFailure
from patientline.channels.models import (
    OPEN_STATUSES,
    SmsMessage,
    SmsProviderRef,
    SmsStatus,
    SmsTemplate,
    SuppressReason,
)
from patientline.core import clock, events, jobs
from patientline.core.config import Settings

log = logging.getLogger(__name__)

DELIVER = "sms.deliver"
SINK_RECEIPT = "sms.sink_receipt"


@jobs.job_handler(DELIVER)
async def deliver(session: AsyncSession, payload: dict[str, Any]) -> None:
    message = await session.get(SmsMessage, int(payload["message_id"]))
    if message is None or message.status not in OPEN_STATUSES:
        return  # sent already, or suppressed: running twice changes nothing
    if await optouts.is_opted_out(session, phone=message.phone):  # the patient replied 退订 in the meantime
        message.status, message.suppress_reason = SmsStatus.SUPPRESSED.value, SuppressReason.OPTED_OUT.value
        return
    config = policy.settings()
    gateway = gateways.sms_gateway(config)
    try:
        result = await gateway.send(await _outbound(session, message))
    except PermanentFailure as exc:
        _fail(session, message, str(exc))
        return
    except TemporaryFailure as exc:
        if message.attempts + 1 >= config.sms_max_attempts:
            _fail(session, message, f"{exc} ({message.attempts + 1} attempts)")
            return
        await _note_attempt(session, message.id, str(exc))
        raise
    await _sent(session, message, result)
    if gateway.simulates_receipts:
        for ref in result.refs:
            await jobs.enqueue(
                session,
                kind=SINK_RECEIPT,
                payload={"ref": ref},
                run_at=clock.now() + timedelta(seconds=config.sms_sink_receipt_seconds),
            )
    await take_inbound(session, result.inbound)


@jobs.job_handler(SINK_RECEIPT)
async def sink_receipt(session: AsyncSession, payload: dict[str, Any]) -> None:
    await apply_receipt(session, Receipt(provider="sink", ref=str(payload["ref"]), delivered=True))


async def _outbound(session: AsyncSession, message: SmsMessage) -> OutboundSms:
    template = await session.scalar(select(SmsTemplate).where(SmsTemplate.code == message.template_code))
    return OutboundSms(
        message_id=message.id,
        phone=message.phone,
        text=message.text,
        template_code=message.template_code,
        provider_template_code=template.provider_template_code if template else "",
        variables={k: str(v) for k, v in message.variables.items()},
    )


async def _note_attempt(session: AsyncSession, message_id: int, error: str) -> None:
    """Records a failed attempt in a transaction of its own: the job's is rolled back when it raises
    for the retry, and the outbox should still show the attempt and its error."""
    async with AsyncSession(bind=session.bind) as side, side.begin():
        await side.execute(
            update(SmsMessage)
            .where(SmsMessage.id == message_id)
            .values(attempts=SmsMessage.attempts + 1, last_error=error[:500], status=SmsStatus.SENDING.value)
        )


def _event_fields(message: SmsMessage) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "template": message.template_code,
        "phone": policy.mask_phone(message.phone),
        "related_type": message.related_type,
        "related_id": message.related_id,
        "audience": MESSAGING,
    }


def _fail(session: AsyncSession, message: SmsMessage, error: str, *, attempted: bool = True) -> None:
    message.status = SmsStatus.FAILED.value
    message.attempts += int(attempted)
    message.last_error = error[:500]
    message.failed_at = clock.now()
    events.record(session, SmsFailed(**_event_fields(message), error=error[:300]))


async def _sent(session: AsyncSession, message: SmsMessage, result: SendResult) -> None:
    message.status = SmsStatus.SENT.value
    message.attempts += 1
    message.sent_at = clock.now()
    message.provider = result.provider
    message.provider_ids = list(result.refs)
    message.parts = result.parts
    message.last_error = None
    for part, ref in enumerate(result.refs, start=1):
        session.add(
            SmsProviderRef(
                message_id=message.id, provider=result.provider, ref=ref, part=part, status=SmsStatus.SENT.value
            )
        )
    await session.flush()
    events.record(session, SmsSent(**_event_fields(message), parts=message.parts))


async def apply_receipt(session: AsyncSession, receipt: Receipt) -> bool:
    """Marks a part delivered or failed; the message is delivered when every part is, failed when any
    part failed. Receipts for unknown references are ignored (False); repeats change nothing."""
    ref = await session.scalar(
        select(SmsProviderRef).where(SmsProviderRef.provider == receipt.provider, SmsProviderRef.ref == receipt.ref)
    )
    if ref is None:
        return False
    ref.status = SmsStatus.DELIVERED.value if receipt.delivered else SmsStatus.FAILED.value
    ref.error = (receipt.error or "")[:200] or None
    message = await session.get(SmsMessage, ref.message_id)
    if message is None or message.status != SmsStatus.SENT:
        return True
    await session.flush()
    parts = list(await session.scalars(select(SmsProviderRef).where(SmsProviderRef.message_id == message.id)))
    if any(p.status == SmsStatus.FAILED for p in parts):
        _fail(session, message, f"not delivered: {receipt.error or 'no reason given'}", attempted=False)
    elif all(p.status == SmsStatus.DELIVERED for p in parts):
        message.status = SmsStatus.DELIVERED.value
        message.delivered_at = clock.now()
        events.record(session, SmsDelivered(**_event_fields(message)))
    return True


async def take_inbound(session: AsyncSession, items: Iterable[Receipt | Reply]) -> None:
    for item in items:
        if isinstance(item, Receipt):
            await apply_receipt(session, item)
        elif await optouts.take_reply(session, phone=item.phone, text=item.text):
            log.info("sms opt-out by reply")


@jobs.sweeper("channels.smpp_inbox", every_seconds=60)
async def smpp_inbox(session: AsyncSession, settings: Settings) -> None:
    """Receipts and replies that arrive while no text is being sent wait at the SMSC until we bind."""
    if settings.sms_adapter != "smpp" or not settings.sms_smpp_poll_inbox:
        return
    from patientline.channels.smpp import SmppGateway

    try:
        inbound = await SmppGateway.from_settings(settings).collect()
    except TemporaryFailure as exc:
        log.warning("smpp inbox not reachable", extra={"error": str(exc)[:200]})
        return
    await take_inbound(session, inbound)
