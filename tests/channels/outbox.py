"""Helpers for the channels tests: send through the service, run the worker's due jobs, read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from patientline.channels import email, sms
from patientline.channels.models import EmailMessage, SmsMessage
from patientline.core import jobs
from patientline.core.db import Database
from patientline.core.events import EventLogEntry

SHANGHAI = ZoneInfo("Asia/Shanghai")
MORNING = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # a Monday
RECEIPT_SECRET = "receipt-secret-42"
RECEIVED = {"type": "投诉", "reference": "WO-20261123-0001", "deadline": "11月25日17:00"}


async def send(db: Database, phone: str = "13800138000", template: str = "wo_received", **kwargs: Any) -> SmsMessage:
    kwargs.setdefault("variables", RECEIVED)
    async with db.sessions() as session, session.begin():
        return await sms.send(session, phone=phone, template=template, **kwargs)


async def send_email(db: Database, **kwargs: Any) -> EmailMessage:
    kwargs.setdefault("to", "duty@hospital.example")
    kwargs.setdefault("subject", "新工单 WO-20261123-0001")
    kwargs.setdefault("body", "心内科：新投诉工单待处理。")
    async with db.sessions() as session, session.begin():
        return await email.send(session, **kwargs)


async def message(db: Database, message_id: int) -> SmsMessage:
    async with db.sessions() as session:
        row = await session.get(SmsMessage, message_id)
        assert row is not None
        return row


async def email_message(db: Database, message_id: int) -> EmailMessage:
    async with db.sessions() as session:
        row = await session.get(EmailMessage, message_id)
        assert row is not None
        return row


async def run_jobs(db: Database) -> int:
    return await jobs.run_due(db, worker_id="test-worker")


async def jobs_of(db: Database, kind: str) -> list[jobs.Job]:
    async with db.sessions() as session:
        return list(await session.scalars(select(jobs.Job).where(jobs.Job.kind == kind).order_by(jobs.Job.id)))


async def event_types(db: Database) -> list[str]:
    async with db.sessions() as session:
        return list(await session.scalars(select(EventLogEntry.type).order_by(EventLogEntry.id)))


async def count(db: Database, model: Any) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)
