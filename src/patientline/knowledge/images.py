"""Pictures in answers (floor maps, signposts): checked by their bytes, not their name, and kept in
the database so every node serves them."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput, NotFound
from patientline.core.validation import ReadModel
from patientline.knowledge import service
from patientline.knowledge.models import Image
from patientline.knowledge.sanitize import IMAGE_PATH

MAX_BYTES = 1024 * 1024  # within the request size limit, multipart framing included
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class ImageRead(ReadModel):
    id: int
    url: str
    filename: str
    content_type: str
    size: int
    item_id: int | None
    created_at: datetime

    @classmethod
    def of(cls, row: Image) -> ImageRead:
        return cls(
            id=row.id, url=f"{IMAGE_PATH}{row.id}", filename=row.filename, content_type=row.content_type,
            size=row.size, item_id=row.item_id, created_at=row.created_at,
        )  # fmt: skip


def sniff(raw: bytes) -> str | None:
    for magic, content_type in SIGNATURES:
        if raw.startswith(magic):
            return content_type
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


async def store(session: AsyncSession, *, actor: Actor, filename: str, raw: bytes, item_id: int | None) -> Image:
    actor.require(Permission.EDIT_KNOWLEDGE)
    if item_id is not None:
        item = await service.get_item(session, item_id)
        if not service.may_edit(actor, item.owner_department_id):
            raise InvalidInput("You may add pictures only to items you may edit.", details={"item_id": ["forbidden"]})
    if len(raw) > MAX_BYTES:
        raise InvalidInput(
            "The picture is larger than {limit} MB.", params={"limit": MAX_BYTES // 1024 // 1024},
            details={"file": ["too_large"]},
        )  # fmt: skip
    content_type = sniff(raw)
    if content_type is None:
        raise InvalidInput("Upload a PNG, JPEG, GIF or WebP picture.", details={"file": ["type"]})
    row = Image(
        item_id=item_id, filename=filename[:200], content_type=content_type, size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(), data=raw, uploaded_by_id=actor.user_id, created_at=clock.now(),
    )  # fmt: skip
    session.add(row)
    await session.flush()
    audit.record(
        session, actor=actor, action="knowledge.image.upload", target_type="kb_image", target_id=row.id,
        after={"filename": row.filename, "size": row.size, "item_id": item_id},
    )  # fmt: skip
    return row


async def load(session: AsyncSession, *, image_id: int, actor: Actor | None, today: date) -> Image:
    """Pictures of answers the public may read (live, public, valid today) are public; the others need
    a signed-in reader. The live revision decides, never an unreviewed draft."""
    row = await session.get(Image, image_id)
    if row is None:
        raise NotFound("This picture does not exist.", details={"image_id": image_id})
    if actor is not None and actor.can(Permission.READ_KNOWLEDGE):
        return row
    live = await service.live_items(session, [row.item_id]) if row.item_id else []
    if not (live and live[0].content.get("public", True) and live[0].valid_on(today)):
        raise NotFound("This picture does not exist.", details={"image_id": image_id})
    return row
