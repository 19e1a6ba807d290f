"""Channels API: SMS templates, opt-outs, the SMS and email outbox, test messages, and the
provider's callbacks for delivery reports and replies (protected by a shared secret, not a login)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response

from patientline.channels import cloud, delivery, email, optouts, policy, sms, sms_templates
from patientline.channels.schemas import (
    CallbackAnswer,
    EmailCheck,
    EmailDetail,
    EmailPage,
    EmailRead,
    OptOutCreate,
    OptOutRead,
    SmsCheck,
    SmsDetail,
    SmsPage,
    SmsRead,
    TemplateCreate,
    TemplateRead,
    TemplateUpdate,
)
from patientline.core.auth.permissions import Permission
from patientline.core.errors import NotAuthenticated, PermissionDenied
from patientline.core.validation import MAX_ID, PathId, QueryId
from patientline.web.deps import CurrentActor, Session
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/channels", tags=["channels"])

Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
Text = Annotated[str | None, Query(max_length=40)]
SmsStatusFilter = Annotated[
    Literal["queued", "held", "sending", "sent", "delivered", "failed", "suppressed"] | None, Query()
]
EmailStatusFilter = Annotated[Literal["queued", "sending", "sent", "failed"] | None, Query()]
CallbackItems = Annotated[list[dict[str, Any]], Body(max_length=1000)]


def _json(content: Any, status_code: int = 200) -> FastJSONResponse:
    return FastJSONResponse(content.model_dump(mode="json"), status_code=status_code)


# ---- templates -------------------------------------------------------------------------------


@router.get("/sms/templates", response_model=list[TemplateRead], summary="SMS templates")
async def list_templates(actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    rows = await sms_templates.list_templates(session)
    return FastJSONResponse([TemplateRead.model_validate(r).model_dump(mode="json") for r in rows])


@router.post("/sms/templates", response_model=TemplateRead, status_code=201, summary="Add an SMS template")
async def create_template(body: TemplateCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await sms_templates.create_template(session, actor=actor, values=body.model_dump())
        return _json(TemplateRead.model_validate(row), 201)


@router.get("/sms/templates/{template_id}", response_model=TemplateRead, summary="One SMS template")
async def get_template(template_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    return _json(TemplateRead.model_validate(await sms_templates.get_template(session, template_id=template_id)))


@router.put("/sms/templates/{template_id}", response_model=TemplateRead, summary="Change an SMS template")
async def update_template(template_id: PathId, body: TemplateUpdate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await sms_templates.update_template(
            session,
            actor=actor,
            template_id=template_id,
            expected_version=body.version,
            values=body.model_dump(exclude={"version"}),
        )
        return _json(TemplateRead.model_validate(row))


@router.delete("/sms/templates/{template_id}", status_code=204, summary="Delete a template nothing was sent with")
async def delete_template(template_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await sms_templates.delete_template(session, actor=actor, template_id=template_id)
    return Response(status_code=204)


# ---- opt-outs --------------------------------------------------------------------------------


@router.get("/sms/opt-outs", response_model=list[OptOutRead], summary="Numbers that receive no texts")
async def list_opt_outs(
    actor: CurrentActor,
    session: Session,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    rows, total = await optouts.list_opt_outs(session, phone=phone, limit=limit, offset=offset)
    body = [OptOutRead.of(r).model_dump(mode="json") for r in rows]
    return FastJSONResponse(body, headers={"X-Total-Count": str(total)})


@router.post("/sms/opt-outs", response_model=OptOutRead, status_code=201, summary="Stop texts to a number")
async def add_opt_out(body: OptOutCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await optouts.opt_out(session, actor=actor, phone=body.phone, reason=body.reason)
        return _json(OptOutRead.of(row), 201)


@router.delete("/sms/opt-outs/{opt_out_id}", status_code=204, summary="Allow texts to a number again")
async def remove_opt_out(
    opt_out_id: PathId, actor: CurrentActor, session: Session, reason: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    async with session.begin():
        await optouts.remove_opt_out(session, actor=actor, opt_out_id=opt_out_id, reason=reason)
    return Response(status_code=204)


# ---- the outbox ------------------------------------------------------------------------------


@router.get("/sms/messages", response_model=SmsPage, summary="Text messages, newest first (numbers masked)")
async def list_sms(
    actor: CurrentActor,
    session: Session,
    status: SmsStatusFilter = None,
    phone: Annotated[str | None, Query(max_length=32)] = None,
    template: Text = None,
    related_type: Text = None,
    related_id: QueryId = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    where = sms.MessageFilter(status, phone, template, related_type, related_id, limit, offset)
    rows, total = await sms.list_messages(session, where=where)
    return _json(SmsPage(items=[SmsRead.of(r) for r in rows], total=total))


@router.get("/sms/messages/{message_id}", response_model=SmsDetail, summary="One text message (audited read)")
async def get_sms(message_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await sms.read_message(session, actor=actor, message_id=message_id)
        return _json(SmsDetail.of(row))


@router.post("/sms/test", response_model=SmsRead, status_code=201, summary="Send a test text")
async def send_test_sms(body: SmsCheck, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await sms.send_test(
            session, actor=actor, phone=body.phone, template=body.template, variables=body.variables
        )
        return _json(SmsRead.of(row), 201)


@router.get("/email/messages", response_model=EmailPage, summary="Emails, newest first (addresses masked)")
async def list_email(
    actor: CurrentActor,
    session: Session,
    status: EmailStatusFilter = None,
    related_type: Text = None,
    related_id: QueryId = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    where = email.EmailFilter(status, None, related_type, related_id, limit, offset)
    rows, total = await email.list_messages(session, where=where)
    return _json(EmailPage(items=[EmailRead.of(r) for r in rows], total=total))


@router.get("/email/messages/{message_id}", response_model=EmailDetail, summary="One email")
async def get_email(message_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.MANAGE_MESSAGING)
    return _json(EmailDetail.of(await email.get_message(session, message_id=message_id)))


@router.post("/email/test", response_model=EmailRead, status_code=201, summary="Send a test email")
async def send_test_email(body: EmailCheck, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await email.send_test(session, actor=actor, to=body.to, subject=body.subject, body=body.body)
        return _json(EmailRead.of(row), 201)


# ---- provider callbacks ----------------------------------------------------------------------


def _check_secret(request: Request, sent: str | None) -> None:
    expected = policy.settings().sms_receipt_secret.get_secret_value()
    if not expected:
        raise PermissionDenied(
            "Delivery reports are not accepted: no shared secret is configured.", error_id="callbacks_disabled"
        )
    given = sent or request.query_params.get("token") or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthenticated("The callback token is not valid.", error_id="bad_callback_token")


@router.post("/sms/receipts", response_model=CallbackAnswer, summary="Delivery reports pushed by the provider")
async def sms_receipts(
    request: Request,
    items: CallbackItems,
    session: Session,
    x_patientline_token: Annotated[str | None, Header(max_length=200)] = None,
) -> CallbackAnswer:
    """The provider's report push (a JSON array of `{biz_id, success, err_code, err_msg, …}`). The
    shared secret (`PATIENTLINE_SMS_RECEIPT_SECRET`) comes in the `X-PatientLine-Token` header or
    the `token` query parameter. Repeated reports change nothing."""
    _check_secret(request, x_patientline_token)
    accepted = 0
    async with session.begin():
        for receipt in cloud.parse_reports(items):
            accepted += int(await delivery.apply_receipt(session, receipt))
    return CallbackAnswer(accepted=accepted)


@router.post("/sms/replies", response_model=CallbackAnswer, summary="Patients' replies pushed by the provider")
async def sms_replies(
    request: Request,
    items: CallbackItems,
    session: Session,
    x_patientline_token: Annotated[str | None, Header(max_length=200)] = None,
) -> CallbackAnswer:
    """`[{phone_number, content, …}]`: a reply of 退订, TD or T opts the number out."""
    _check_secret(request, x_patientline_token)
    replies = cloud.parse_replies(items)
    async with session.begin():
        await delivery.take_inbound(session, replies)
    return CallbackAnswer(accepted=len(replies))
