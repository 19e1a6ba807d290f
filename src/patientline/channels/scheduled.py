"""Web chat sweeps: chats left with the assistant end after `chat_idle_minutes`; chats whose queue let
them go without a person get the assistant back, with the offer to leave a message."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.assistant import dialogue
from patientline.core import jobs
from patientline.core.config import Settings

SWEEP = "chat.tidy"


@jobs.sweeper(SWEEP, every_seconds=30)
async def tidy(session: AsyncSession, settings: Settings) -> None:
    await dialogue.stranded(session)
    await dialogue.close_idle(session, idle_minutes=settings.chat_idle_minutes)
