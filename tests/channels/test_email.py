"""email.send through the outbox: the sink, and SMTP against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from outbox import email_message, event_types, jobs_of, run_jobs, send_email
from smsc import free_port

from patientline.core import clock
from patientline.core.errors import InvalidInput


class Mailbox:
    """Accepts everything except addresses at refused.example (550) and busy.example (451)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any) -> str:
        if address.endswith("@refused.example"):
            return "550 5.1.1 no such mailbox"
        if address.endswith("@busy.example"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 OK"


@pytest.fixture
def mailbox(use_settings: Any) -> Iterator[Mailbox]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    use_settings(
        email_adapter="smtp",
        email_smtp_host="127.0.0.1",
        email_smtp_port=port,
        email_from="patientline@hospital.example",
        email_smtp_timeout_seconds=5.0,
    )
    try:
        yield box
    finally:
        controller.stop()


async def test_the_sink_sends_and_the_job_is_in_the_outbox(db: Any) -> None:
    queued = await send_email(db, related_type="work_order", related_id=42)
    assert queued.status == "queued"
    [job] = await jobs_of(db, "email.deliver")
    assert job.payload == {"message_id": queued.id}
    await run_jobs(db)
    row = await email_message(db, queued.id)
    assert (row.status, row.provider, row.attempts) == ("sent", "sink", 1)
    assert "email.sent" in await event_types(db)


async def test_a_chinese_email_arrives_over_smtp(db: Any, mailbox: Mailbox) -> None:
    queued = await send_email(
        db,
        to="xnk@hospital.example",
        subject="新工单：心内科 WO-20261123-0001",
        body="您好：\n\n心内科有一张新的投诉工单待处理，请于11月25日17:00前答复。\n",
    )
    await run_jobs(db)
    [(sender, recipients, raw)] = mailbox.messages
    assert sender == "patientline@hospital.example" and recipients == ["xnk@hospital.example"]
    parsed = message_from_bytes(raw)
    assert str(make_header(decode_header(parsed["Subject"]))) == "新工单：心内科 WO-20261123-0001"
    assert "请于11月25日17:00前答复" in parsed.get_payload(decode=True).decode(parsed.get_content_charset())
    row = await email_message(db, queued.id)
    assert row.status == "sent" and row.provider == "smtp" and row.provider_id == parsed["Message-ID"]


async def test_a_refused_recipient_fails_and_a_deferred_one_is_retried(db: Any, mailbox: Mailbox) -> None:
    refused = await send_email(db, to="nobody@refused.example")
    deferred = await send_email(db, to="someone@busy.example")
    await run_jobs(db)
    failed = await email_message(db, refused.id)
    assert failed.status == "failed" and "550" in (failed.last_error or "")
    retried = await email_message(db, deferred.id)
    assert (retried.status, retried.attempts) == ("sending", 1) and "451" in (retried.last_error or "")
    assert "email.failed" in await event_types(db)


async def test_an_smtp_server_that_is_down_means_a_retry(db: Any, use_settings: Any) -> None:
    use_settings(
        email_adapter="smtp", email_smtp_port=free_port(), email_smtp_timeout_seconds=2.0, email_max_attempts=2
    )
    queued = await send_email(db)
    await run_jobs(db)
    assert (await email_message(db, queued.id)).status == "sending"
    clock.advance(timedelta(minutes=1))
    await run_jobs(db)
    assert (await email_message(db, queued.id)).status == "failed"  # attempts used up


async def test_bad_addresses_and_subjects_are_refused(db: Any) -> None:
    for bad in ({"to": "not an address"}, {"to": "a@b"}, {"subject": ""}, {"subject": "two\nlines"}, {"body": " "}):
        with pytest.raises(InvalidInput):
            await send_email(db, **bad)


async def test_the_same_idempotency_key_returns_the_first_email(db: Any) -> None:
    first = await send_email(db, idempotency_key="wo-42-dept")
    again = await send_email(db, idempotency_key="wo-42-dept", subject="another")
    assert again.id == first.id and len(await jobs_of(db, "email.deliver")) == 1
