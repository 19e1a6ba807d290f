"""Messaging pages: the outbox (texts and emails, refreshing itself), a message's detail, the
template editor with a test send, and the opt-out list. Forms post JSON to the channels API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BeforeValidator
from pydantic import Field as Constraint

from patientline.channels import email, optouts, policy, sms, sms_templates
from patientline.channels.models import EmailStatus, SmsStatus
from patientline.channels.schemas import OptOutRead, SmsRead, mask_email
from patientline.core.auth.permissions import Permission
from patientline.core.errors import InvalidInput
from patientline.core.i18n import gettext
from patientline.core.validation import MAX_ID, PathId
from patientline.web.deps import CurrentActor, Session
from patientline.web.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
Blank = BeforeValidator(lambda v: v or None)  # the filter form sends `status=` for "All"
FilterId = Annotated[Annotated[int, Constraint(ge=1, le=MAX_ID)] | None, Blank, Query()]
FilterText = Annotated[str | None, Blank, Query(max_length=40)]
Page = Annotated[int, Query(ge=1, le=10_000)]
SMS_STATUSES = [s.value for s in SmsStatus]
EMAIL_STATUSES = [s.value for s in EmailStatus]


def _sms_filter(status: str | None, phone: str | None, template: str | None, page: int) -> sms.MessageFilter:
    return sms.MessageFilter(
        status=status if status in SMS_STATUSES else None,
        phone=phone,
        template=template,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )


@router.get("/messages")
async def outbox(
    request: Request,
    actor: CurrentActor,
    session: Session,
    tab: Annotated[str, Query(pattern="^(sms|email)$")] = "sms",
    status: FilterText = None,
    phone: Annotated[str | None, Blank, Query(max_length=32)] = None,
    template: FilterText = None,
    page: Page = 1,
) -> Response:
    """The outbox; an htmx request gets the rows only (the page polls them every few seconds)."""
    actor.require(Permission.MANAGE_MESSAGING)
    context: dict[str, Any] = {"tab": tab, "status": status or "", "phone": phone or "", "template": template or ""}
    context |= await (
        _sms_rows(session, status, phone, template, page) if tab == "sms" else _email_rows(session, status, page)
    )
    context["config"] = _config_summary()
    partial = request.headers.get("HX-Request") and not request.headers.get("HX-Boosted")
    name = f"channels/{tab}_rows.html" if partial else "channels/outbox.html"
    return render(request, name, context)


async def _sms_rows(
    session: Session, status: str | None, phone: str | None, template: str | None, page: int
) -> dict[str, Any]:
    try:
        rows, total = await sms.list_messages(session, where=_sms_filter(status, phone, template, page))
        problem = None
    except InvalidInput as exc:
        rows, total, problem = [], 0, exc.localized_message(gettext)
    return {
        "rows": [SmsRead.of(r) for r in rows],
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "counts": await sms.status_counts(session),
        "statuses": SMS_STATUSES,
        "templates": [t.code for t in await sms_templates.list_templates(session)],
        "problem": problem,
    }


async def _email_rows(session: Session, status: str | None, page: int) -> dict[str, Any]:
    where = email.EmailFilter(
        status=status if status in EMAIL_STATUSES else None, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    rows, total = await email.list_messages(session, where=where)
    return {
        "rows": rows,
        "total": total,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "counts": await email.status_counts(session),
        "statuses": EMAIL_STATUSES,
        "mask_email": mask_email,
        "problem": None,
    }


def _config_summary() -> dict[str, Any]:
    config = policy.settings()
    return {
        "sms_adapter": config.sms_adapter,
        "email_adapter": config.email_adapter,
        "quiet_hours": config.sms_quiet_hours,
        "rate_limit": config.sms_rate_limit,
        "rate_window": config.sms_rate_window_hours,
        "sign_name": config.sms_sign_name,
    }


@router.get("/messages/sms/{message_id}")
async def sms_detail(request: Request, message_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await sms.read_message(session, actor=actor, message_id=message_id)
    return render(request, "channels/sms_detail.html", {"row": row, "masked": policy.mask_phone(row.phone)})


@router.get("/messages/email/{message_id}")
async def email_detail(request: Request, message_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    row = await email.get_message(session, message_id=message_id)
    return render(request, "channels/email_detail.html", {"row": row})


@router.get("/messages/templates")
async def template_list(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    rows = await sms_templates.list_templates(session)
    return render(request, "channels/templates.html", {"rows": rows, "parts": policy.sms_parts})


@router.get("/messages/templates/new")
async def template_new(request: Request, actor: CurrentActor) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    return render(request, "channels/template_form.html", {"row": None, "sign_name": policy.settings().sms_sign_name})


@router.get("/messages/templates/{template_id}")
async def template_edit(request: Request, template_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    row = await sms_templates.get_template(session, template_id=template_id)
    return render(request, "channels/template_form.html", {"row": row, "sign_name": policy.settings().sms_sign_name})


@router.get("/messages/opt-outs")
async def opt_out_list(
    request: Request,
    actor: CurrentActor,
    session: Session,
    phone: Annotated[str | None, Blank, Query(max_length=32)] = None,
    page: Page = 1,
) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    problem = None
    try:
        rows, total = await optouts.list_opt_outs(session, phone=phone, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    except InvalidInput as exc:
        rows, total, problem = [], 0, exc.localized_message(gettext)
    context = {
        "rows": [OptOutRead.of(r) for r in rows],
        "total": total,
        "phone": phone or "",
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "problem": problem,
    }
    return render(request, "channels/opt_outs.html", context)
