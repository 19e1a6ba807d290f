"""Web chat pages: the patient's chat (standalone, or framed by the widget a hospital embeds with one
script tag), the agents' chat desk (supervisors watch and take over from it too), and the pictures
patients sent."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from patientline.channels import webchat
from patientline.channels.webchat_router import PublicId
from patientline.contacts import dispositions
from patientline.core.auth.permissions import Permission
from patientline.core.i18n import N_, gettext, gettext_all
from patientline.knowledge.portal_pages import HOTLINE, page, portal_locale
from patientline.routing import service as routing
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render

router = APIRouter(include_in_schema=False)

PATIENT_TEXTS = {
    "sending": N_("Sending…"),
    "not_sent": N_("Not sent yet: it goes as soon as the connection is back."),
    "read": N_("Read"),
    "typing": N_("Typing…"),
    "reconnecting": N_("Reconnecting…"),
    "connected": N_("Connected"),
    "rated": N_("Thank you for your rating."),
    "picture": N_("Picture"),
    "too_big": N_("The picture is larger than 2 MB."),
    "not_picture": N_("Send a picture: PNG, JPEG, GIF or WebP."),
    "more": N_("Read more"),
    "clinics": N_("Where:"),
    "no_clinic": N_("Ask at the information desk."),
    "code_sent": N_("A code was sent to {phone}."),
    "failed": N_("Something went wrong. Please try again."),
    "new_chat": N_("Start a new chat"),
}
DESK_TEXTS = {
    "patient": N_("Patient"),
    "bot": N_("Assistant"),
    "system": N_("Notice"),
    "typing": N_("The patient is typing…"),
    "no_chats": N_("No chats. When you are ready, chats ring in the agent bar."),
    "no_live": N_("No live chats."),
    "no_suggestions": N_("No knowledge matches the patient's last message."),
    "states": {"bot": N_("with the assistant"), "queued": N_("waiting"), "agent": N_("with a person"),
               "closed": N_("ended")},
    "emergency": N_("Emergency words"),
    "failed": N_("That did not work:"),
    "picture": N_("Picture"),
    "identified": N_("Verified number"),
    "anonymous": N_("Not identified"),
}  # fmt: skip
SCRIPTS = (
    (N_("Greeting"), N_("Hello, this is {agent}. How can I help you?")),
    (N_("One moment"), N_("Please wait a moment while I check that for you.")),
    (N_("Closing"), N_("Is there anything else I can help with? Thank you for contacting us.")),
)


def _frame_policy(request: Request) -> dict[str, str]:
    """The chat may be framed by the hospital's own pages (the widget) and the sites configured."""
    origins = " ".join(app_state(request).settings.chat_frame_origins.split())
    csp = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
           f"img-src 'self' data:; connect-src 'self'; frame-ancestors 'self' {origins}".rstrip() + "; "
           "form-action 'self'")  # fmt: skip
    return {"Content-Security-Policy": csp}


@router.get("/chat")
async def patient_chat(
    request: Request,
    lang: Annotated[Literal["zh_CN", "en"] | None, Query()] = None,
    embed: Annotated[bool, Query()] = False,
) -> Response:
    locale = portal_locale(lang)
    context = {"texts": gettext_all(PATIENT_TEXTS), "embed": embed, "hotline": HOTLINE}
    response = page(request, "channels/chat.html", locale, context)
    response.headers.update(_frame_policy(request))
    return response


@router.get("/chat/demo-site")
async def demo_site(request: Request) -> Response:
    """A hospital web page with the widget on it: what hospitals paste, shown working."""
    locale = portal_locale(None)
    return page(request, "channels/chat_demo_site.html", locale, {})


@router.get("/chat/images/{key}")
async def image(key: str, session: Session) -> Response:
    """A picture a patient sent, to whoever has its unguessable address (the chat's two sides)."""
    async with session.begin():
        row = await webchat.image(session, key=key)
        headers = {"Cache-Control": "private, max-age=86400", "Content-Disposition": "inline"}
        return Response(row.data, media_type=row.content_type, headers=headers)


@router.get("/chat/desk")
async def desk(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.HANDLE_CONTACTS)
    async with session.begin():
        queues = [(q.id, q.name) for q in await routing.list_queues(session) if q.is_active]
        tree = await dispositions.load_tree(session)
        codes = [(row.id, tree.path_name(row.id)) for row, _depth in tree.walk() if tree.effectively_active(row.id)]
    settings = app_state(request).settings
    context = {
        "texts": gettext_all(DESK_TEXTS),
        "scripts": [(gettext(label), gettext(text)) for label, text in SCRIPTS],
        "persona": settings.chat_persona or actor.display_name,
        "queues": queues,
        "dispositions": codes,
        "can_supervise": actor.can(Permission.SUPERVISE),
        "can_order": actor.can(Permission.CREATE_WORK_ORDERS),
    }
    return render(request, "channels/chat_desk.html", context)


@router.get("/chat/monitor/{public_id}")
async def monitor(public_id: PublicId, actor: CurrentActor) -> Response:
    """Where the emergency alert links: the chat, open in the desk."""
    actor.require(Permission.SUPERVISE)
    return RedirectResponse(f"/chat/desk?chat={public_id}", status_code=303)
