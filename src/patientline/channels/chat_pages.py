"""Web chat pages: the patient's chat (standalone or framed by the widget), the script hospitals embed,
the agents' chat desk and the supervisors' monitor; and the pictures patients sent."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from patientline.channels import webchat
from patientline.web.deps import Session

router = APIRouter(include_in_schema=False)


@router.get("/chat/images/{key}")
async def image(key: str, session: Session) -> Response:
    """A picture a patient sent, to whoever has its unguessable address (the chat's two sides)."""
    async with session.begin():
        row = await webchat.image(session, key=key)
        headers = {"Cache-Control": "private, max-age=86400", "Content-Disposition": "inline"}
        return Response(row.data, media_type=row.content_type, headers=headers)
