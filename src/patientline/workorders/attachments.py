"""Evidence on an order (photos, documents, recordings): checked by their bytes, limited in size, kept
in the database so every node serves them, and listed on the timeline."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import flush_or_conflict
from patientline.core.errors import InvalidInput, NotFound, PayloadTooLarge, PermissionDenied
from patientline.core.validation import ReadModel
from patientline.workorders import access, service
from patientline.workorders.models import Attachment

MAX_BYTES = 8 * 1024 * 1024  # under the upload route's request limit, multipart framing included
MAX_PER_ORDER = 20
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"\xff\xf3", "audio/mpeg"),
)
ALLOWED_LABEL = "PDF, PNG, JPEG, GIF, WebP, WAV, MP3"
UNSAFE_NAME = re.compile(r"[^\w.\-\u4e00-\u9fff ]")


class AttachmentRead(ReadModel):
    id: int
    order_id: int
    filename: str
    content_type: str
    size: int
    uploaded_at: datetime
    url: str

    @classmethod
    def of(cls, row: Attachment) -> AttachmentRead:
        return cls(
            id=row.id, order_id=row.order_id, filename=row.filename, content_type=row.content_type, size=row.size,
            uploaded_at=row.uploaded_at, url=f"/api/workorders/{row.order_id}/attachments/{row.id}",
        )  # fmt: skip


def sniff(raw: bytes) -> str | None:
    for magic, content_type in SIGNATURES:
        if raw.startswith(magic):
            return content_type
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WAVE":
        return "audio/wav"
    return None


def clean_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "evidence"
    return UNSAFE_NAME.sub("_", base)[:200]


async def store(
    session: AsyncSession, *, actor: Actor, order_id: int, filename: str, raw: bytes, note: str = ""
) -> Attachment:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    if not (actor.can(Permission.CREATE_WORK_ORDERS) or access.is_department_handler(actor, order.department_id)):
        raise PermissionDenied("You do not have permission to do this.")
    if len(raw) > MAX_BYTES:
        raise PayloadTooLarge("A file may be at most {mb} MB.", params={"mb": MAX_BYTES // (1024 * 1024)})
    content_type = sniff(raw)
    if not raw or content_type is None:
        raise InvalidInput("Attach {allowed} files only.", params={"allowed": ALLOWED_LABEL},
                           details=[{"field": "file", "problem": "file_type", "message": ALLOWED_LABEL}])  # fmt: skip
    count = await session.scalar(select(func.count()).where(Attachment.order_id == order.id)) or 0
    if count >= MAX_PER_ORDER:
        raise InvalidInput("An order holds at most {n} files.", params={"n": MAX_PER_ORDER})
    name = clean_filename(filename)
    entry = service.add_timeline(session, order, actor=actor, action="attachment", note=note, details={"file": name})
    await session.flush()
    row = Attachment(order_id=order.id, timeline_id=entry.id, filename=name, content_type=content_type,
                     size=len(raw), data=raw, uploaded_by_id=actor.user_id, uploaded_at=clock.now())  # fmt: skip
    session.add(row)
    await flush_or_conflict(session)
    entry.details = {"file": name, "attachment_id": row.id}
    audit.record(session, actor=actor, action="workorders.attachment.add", target_type="work_order",
                 target_id=order.id, after={"attachment_id": row.id, "size": row.size})  # fmt: skip
    return row


async def list_for(session: AsyncSession, order_id: int) -> list[Attachment]:
    query = select(Attachment).options(defer(Attachment.data)).where(Attachment.order_id == order_id)
    query = query.order_by(Attachment.id)
    return list(await session.scalars(query))


async def fetch(session: AsyncSession, *, actor: Actor, order_id: int, attachment_id: int) -> Attachment:
    await service.read_order(session, actor=actor, order_id=order_id)
    row = await session.get(Attachment, attachment_id)
    if row is None or row.order_id != order_id:
        raise NotFound("No such attachment.", details={"id": attachment_id})
    return row
