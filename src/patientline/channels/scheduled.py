"""Web chat sweeps: chats left with the assistant end after `chat_idle_minutes`; chats whose queue let
them go without a person get the assistant back, with the offer to leave a message; chats that ended
longer ago than `contact_retention_days` are deleted, as their contacts are anonymised."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.assistant import dialogue
from patientline.channels import webchat
from patientline.contacts.scheduled import cutoff_for
from patientline.core import jobs
from patientline.core.config import Settings

SWEEP = "chat.tidy"
RETENTION = "chat.retention"


@jobs.sweeper(SWEEP, every_seconds=30)
async def tidy(session: AsyncSession, settings: Settings) -> None:
    await dialogue.stranded(session)
    await dialogue.close_idle(session, idle_minutes=settings.chat_idle_minutes)


@jobs.sweeper(RETENTION, every_seconds=3600)
async def retention(session: AsyncSession, settings: Settings) -> None:
    await webchat.purge_before(session, cutoff=cutoff_for(settings.contact_retention_days))
