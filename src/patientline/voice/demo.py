"""The demo hospital's hotline flow on 8585, published: a recorded chime, greeting, a seasonal notice, opening hours, a
menu into the demo queues (booking with the caller's record number, complaints, the expert centre,
insurance), a spoken knowledge answer, a callback and voicemail."""

from __future__ import annotations

import io
import math
import struct
import wave
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.models import User
from patientline.core.config import Settings
from patientline.knowledge.models import Item
from patientline.routing.demo import ADMIN
from patientline.routing.models import RoutingQueue
from patientline.voice import phones, recorded, service
from patientline.voice.flows import FlowDefinition
from patientline.voice.models import IvrFlow
from patientline.voice.prompts import PromptFailed
from patientline.voice.schemas import FlowCreate, PublishIn

NAME = "患者服务热线 8585"
CHIME = "来电提示音"
CHIME_NOTES = ((659.3, 0.22), (523.3, 0.45))  # E5 then C5, as the hotline's jingle
CHIME_RATE = 16000


def chime_wav() -> bytes:
    """Two soft notes, each fading out: the recording the demo's flow plays before its greeting."""
    samples = bytearray()
    for hertz, seconds in CHIME_NOTES:
        count = int(seconds * CHIME_RATE)
        for n in range(count):
            fade = 1 - n / count
            samples += struct.pack("<h", int(8000 * fade * math.sin(2 * math.pi * hertz * n / CHIME_RATE)))
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(CHIME_RATE)
        writer.writeframes(bytes(samples))
    return out.getvalue()


async def _chime(session: AsyncSession) -> int | None:
    """The chime as a recorded prompt; None where sox is missing (the flow then starts with its greeting)."""
    try:
        row = await recorded.upload(session, actor=ADMIN, name=CHIME, words="", filename="chime.wav", raw=chime_wav())
    except PromptFailed:
        return None
    return row.id


def hotline(queues: dict[str, int], spoken_item: int | None, chime: int | None) -> dict[str, Any]:
    faq = [{"type": "knowledge", "id": "parking", "item_id": spoken_item, "next": "menu"}] if spoken_item else []
    menu_faq = {"4": "parking"} if spoken_item else {}
    chimes = [{"type": "play", "id": "chime", "prompt": {"recorded_id": chime}, "next": "welcome"}]
    return {"start": "chime" if chime else "welcome", "nodes": [
        *(chimes if chime else []),
        {"type": "play", "id": "welcome", "prompt": {"text": "您好，欢迎致电患者服务热线。本次通话将被录音。"},
         "next": "winter"},
        {"type": "announcement", "id": "winter", "prompt": {"text": "冬季流感高发，发热患者请到发热门诊就诊。"},
         "active_from": "2026-11-01", "active_until": "2027-03-31", "next": "hours"},
        {"type": "hours", "id": "hours", "hours": "07:30-20:00", "working_days_only": False,
         "open": "menu", "closed": "night"},
        {"type": "menu", "id": "menu",
         "prompt": {"text": "预约挂号请按1，投诉建议请按2，专家中心请按3，停车指引请按4，医保咨询请按5，人工服务请按0。"},
         "choices": {"1": "mrn", "2": "complaint", "3": "expert", "5": "insurance", "0": "general", **menu_faq},
         "timeout_seconds": 6, "retries": 2, "otherwise": "general"},
        {"type": "collect", "id": "mrn", "prompt": {"text": "请输入就诊卡号或病历号，以井号键结束。"}, "kind": "mrn",
         "min_digits": 6, "max_digits": 12, "next": "booking", "otherwise": "booking"},
        {"type": "transfer", "id": "booking", "queue_id": queues["BOOKING"]},
        {"type": "transfer", "id": "complaint", "queue_id": queues["COMPLAINT"]},
        {"type": "transfer", "id": "expert", "queue_id": queues["EXPERT"]},
        {"type": "transfer", "id": "insurance", "queue_id": queues["INSURANCE"]},
        {"type": "transfer", "id": "general", "queue_id": queues["GENERAL"]},
        {"type": "menu", "id": "night", "prompt": {"text": "现在是非工作时间。需要回电请按1，留言请按2，人工服务请按0。"},
         "choices": {"1": "callback", "2": "voicemail", "0": "general"}, "otherwise": "voicemail"},
        {"type": "callback", "id": "callback", "prompt": {"text": "已为您登记回电，我们会按顺序尽快回复。"},
         "queue_id": queues["GENERAL"]},
        {"type": "voicemail", "id": "voicemail", "prompt": {"text": "请在提示音后留言，说完请挂机。"}},
        *faq,
    ]}  # fmt: skip


async def load_demo_voice(session: AsyncSession, settings: Settings, phone_password: str) -> str:
    if await session.scalar(select(IvrFlow.id).where(IvrFlow.name == NAME)) is not None:
        return "voice flow already loaded"
    staff = (await session.scalars(select(User.id).where(User.is_active.is_(True)))).all()
    for user_id in staff:  # every demo account's desk phone logs in with the demo password
        await phones.set_password(session, settings, ADMIN, user_id, phone_password)
    queues = {code: queue_id for code, queue_id in await session.execute(select(RoutingQueue.code, RoutingQueue.id))}
    spoken_item = await session.scalar(
        select(Item.id)
        .where(
            Item.public.is_(True), Item.live_revision_id.is_not(None), Item.spoken != "", Item.question.contains("停车")
        )
        .order_by(Item.id)
        .limit(1)
    )
    draft = FlowDefinition.model_validate(hotline(queues, spoken_item, await _chime(session)))
    flow = await service.create_flow(session, actor=ADMIN, data=FlowCreate(name=NAME, number="8585", draft=draft))
    await service.publish(session, actor=ADMIN, flow_id=flow.id, data=PublishIn(version=flow.version, note="demo"))
    return f"voice flow {NAME} published, {len(staff)} desk phones"
