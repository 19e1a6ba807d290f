"""Work-order API: types and department contacts (admins), orders and their steps, notes, pauses,
extensions, callbacks, links, evidence, the supervision list and bulk reminders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from pydantic import AwareDatetime
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import NotFound, PermissionDenied
from patientline.core.masking import mask_phone
from patientline.core.validation import MAX_ID, PathId, QueryId, display_phone
from patientline.web.deps import CurrentActor, Session
from patientline.web.responses import FastJSONResponse
from patientline.workorders import access, attachments, config, followup, queries, service, timing
from patientline.workorders.models import Extension, Link, WorkOrder
from patientline.workorders.policy import Explanation
from patientline.workorders.schemas import (
    CallbackAttemptIn,
    CallbackScheduleIn,
    CloseIn,
    DepartmentContactIn,
    DepartmentContactRead,
    DispatchIn,
    EvaluationIn,
    ExtensionDecisionIn,
    ExtensionIn,
    LinkIn,
    MergeIn,
    NoteIn,
    NoteOnly,
    OrderCreate,
    OrderDetail,
    OrderRead,
    PauseIn,
    ReasonIn,
    ReminderIn,
    RevealIn,
    TextIn,
    TimelineRead,
    TypeCreate,
    TypeRead,
    TypeUpdate,
    Versioned,
)

router = APIRouter(prefix="/api/workorders", tags=["work orders"])

Urgency = Literal["overdue", "soon", "paused", "escalated"]


def order_json(order: WorkOrder) -> dict[str, Any]:
    data = {key: getattr(order, key) for key in OrderRead.model_fields if key != "caller_phone_masked"}
    return OrderRead(**data, caller_phone_masked=mask_phone(order.caller_phone)).model_dump(mode="json")


DETAIL_COLUMNS = ("description", "values", "contact_ref", "callback_from", "callback_until", "reply_text",
                  "result_text", "evaluation_comment", "pause_reason", "extension_amount", "merged_into_id",
                  "clock_started_at")  # fmt: skip


async def detail_json(session: AsyncSession, actor: Actor, order: WorkOrder) -> dict[str, Any]:
    timeline = await service.timeline(session, order.id)
    detail = OrderDetail(
        **order_json(order),
        **{key: getattr(order, key) for key in DETAIL_COLUMNS},
        co_department_ids=await access.co_handlers(session, order.id),
        allowed_steps=service.allowed_steps(order, actor),
        timeline=[TimelineRead.model_validate(row) for row in timeline],
    )
    return detail.model_dump(mode="json")


EXTENSION_COLUMNS = ("id", "order_id", "amount", "reason", "status", "requested_by_id", "requested_at",
                     "decided_by_id", "decided_at", "decision_note")  # fmt: skip


def _extension_json(row: Extension) -> dict[str, Any]:
    values = {key: getattr(row, key) for key in EXTENSION_COLUMNS}
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in values.items()}


def _explanation_json(item: Explanation) -> dict[str, Any]:
    return {
        "start": item.start.isoformat(),
        "period": item.period,
        "due_at": item.due_at.isoformat() if item.due_at else None,
        "days": [day.to_dict() for day in item.days],
        "fallback_years": item.fallback_years,
        "pauses": [{"start": p.start.isoformat(), "end": p.end.isoformat()} for p in item.pauses],
    }


def _link_json(row: Link) -> dict[str, Any]:
    return {"kind": row.kind, "target": row.target}


# --- configuration ---------------------------------------------------------------------------------


@router.get("/types", response_model=list[TypeRead], summary="Work-order types")
async def list_types(actor: CurrentActor, session: Session, active: bool = False) -> Response:
    if not (access.sees_everything(actor) or actor.can(Permission.HANDLE_DEPARTMENT_WORK)):
        raise PermissionDenied("You do not have permission to do this.")
    rows = await config.list_types(session, active_only=active)
    return FastJSONResponse([TypeRead.model_validate(row).model_dump(mode="json") for row in rows])


@router.post("/types", response_model=TypeRead, status_code=201, summary="Create a type")
async def create_type(body: TypeCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await config.create_type(session, actor=actor, data=body)
        return FastJSONResponse(TypeRead.model_validate(row).model_dump(mode="json"), status_code=201)


@router.put("/types/{type_id}", response_model=TypeRead, summary="Change a type (a new policy recomputes open orders)")
async def update_type(type_id: PathId, body: TypeUpdate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await config.update_type(session, actor=actor, type_id=type_id, data=body)
        return FastJSONResponse(TypeRead.model_validate(row).model_dump(mode="json"))


@router.get("/department-contacts", response_model=list[DepartmentContactRead], summary="Departments' contacts")
async def list_contacts(actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_WORK_ORDERS)
    rows = await config.department_contacts(session)
    return FastJSONResponse([DepartmentContactRead.model_validate(row).model_dump(mode="json") for row in rows])


@router.put("/department-contacts/{department_id}", response_model=DepartmentContactRead, summary="Set a contact")
async def set_contact(
    department_id: PathId, body: DepartmentContactIn, actor: CurrentActor, session: Session
) -> Response:
    async with session.begin():
        row = await config.set_department_contact(session, actor=actor, department_id=department_id, data=body)
        return FastJSONResponse(DepartmentContactRead.model_validate(row).model_dump(mode="json"))


# --- orders ----------------------------------------------------------------------------------------


@router.post("", response_model=OrderDetail, status_code=201, summary="Register an order (idempotent with client_key)")
async def create_order(body: OrderCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.create(session, actor=actor, data=body)
        return FastJSONResponse(await detail_json(session, actor, order), status_code=201)


@router.get("", summary="Orders with filters")
async def list_orders(
    actor: CurrentActor,
    session: Session,
    status: Annotated[str | None, Query(max_length=16)] = None,
    open_only: bool = False,
    type_id: QueryId = None,
    group: Literal["callback", "complaint", "feedback", "service"] | None = None,
    department_id: QueryId = None,
    mine: bool = False,
    q: Annotated[str | None, Query(max_length=100)] = None,
    urgency: Urgency | None = None,
    callbacks_due: bool = False,
    received_from: AwareDatetime | None = None,
    received_to: AwareDatetime | None = None,
    order_by: Literal["due", "received"] = "due",
    limit: Annotated[int, Query(ge=1, le=queries.PAGE_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    if not (access.sees_everything(actor) or actor.can(Permission.HANDLE_DEPARTMENT_WORK)):
        raise PermissionDenied("You do not have permission to do this.")
    where = queries.OrderFilter(
        status=status, open_only=open_only, type_id=type_id, group=group, department_id=department_id,
        owner_id=actor.user_id if mine else None, text=q, urgency=urgency, callbacks_due=callbacks_due,
        received_from=received_from, received_to=received_to, order_by=order_by, limit=limit, offset=offset,
    )  # fmt: skip
    rows, total = await queries.list_orders(session, actor=actor, where=where)
    return FastJSONResponse({"total": total, "items": [order_json(row) for row in rows]})


@router.get("/supervision", summary="The supervision list: open orders by urgency, with per-department counts")
async def supervision(
    actor: CurrentActor,
    session: Session,
    department_id: QueryId = None,
    type_id: QueryId = None,
    urgency: Urgency | None = None,
    limit: Annotated[int, Query(ge=1, le=queries.PAGE_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    if not (actor.can(Permission.SUPERVISE) or actor.can(Permission.READ_WORK_ORDER_REPORTS)):
        raise PermissionDenied("You do not have permission to do this.")
    where = queries.OrderFilter(open_only=True, department_id=department_id, type_id=type_id, urgency=urgency,
                                limit=limit, offset=offset)  # fmt: skip
    rows, total = await queries.list_orders(session, actor=actor, where=where)
    loads = await queries.department_loads(session, actor=actor, where=where)
    return FastJSONResponse({
        "total": total,
        "items": [order_json(row) for row in rows],
        "departments": [load.__dict__ for load in loads],
    })  # fmt: skip


@router.post("/reminders", summary="Remind the departments of the chosen open orders")
async def remind(body: ReminderIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        count = await followup.remind(session, actor=actor, order_ids=body.order_ids, note=body.note)
    return FastJSONResponse({"reminded": count})


@router.get("/extensions", summary="Extension requests waiting for a decision")
async def pending_extensions(actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.SUPERVISE)
    return FastJSONResponse([_extension_json(row) for row in await followup.extensions(session, pending=True)])


@router.post("/extensions/{extension_id}/decision", summary="Approve or refuse an extension")
async def decide_extension(
    extension_id: PathId, body: ExtensionDecisionIn, actor: CurrentActor, session: Session
) -> Response:
    async with session.begin():
        row = await followup.decide_extension(
            session, actor=actor, extension_id=extension_id, approve=body.approve, note=body.note
        )
        return FastJSONResponse(_extension_json(row))


@router.get("/by-reference/{reference}", response_model=OrderDetail, summary="One order by its reference")
async def by_reference(
    reference: Annotated[str, Path(max_length=32)], actor: CurrentActor, session: Session
) -> Response:
    order = await service.find_by_reference(session, reference)
    if order is None:
        raise NotFound("No such work order.", details={"reference": reference})
    await access.require_read(session, actor, order)
    return FastJSONResponse(await detail_json(session, actor, order))


@router.get("/{order_id}", response_model=OrderDetail, summary="One order with its timeline and allowed steps")
async def get_order(order_id: PathId, actor: CurrentActor, session: Session) -> Response:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    return FastJSONResponse(await detail_json(session, actor, order))


@router.get("/{order_id}/deadlines", summary="Why each deadline is where it is")
async def explain_deadlines(order_id: PathId, actor: CurrentActor, session: Session) -> Response:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    explanations = await timing.explain_deadlines(session, order, await service.order_type(session, order.type_id))
    return FastJSONResponse({
        "items": [_explanation_json(item) for item in explanations],
        "paused_since": order.paused_at.isoformat() if order.paused_at else None,
        "extension_amount": order.extension_amount,
        "extensions": [_extension_json(row) for row in await followup.extensions(session, order_id=order.id)],
        "reopen_count": order.reopen_count,
    })  # fmt: skip


# --- steps -----------------------------------------------------------------------------------------


async def _detail(session: AsyncSession, actor: Actor, order: WorkOrder) -> Response:
    return FastJSONResponse(await detail_json(session, actor, order))


@router.post("/{order_id}/dispatch", response_model=OrderDetail, summary="Dispatch (or redispatch) to a department")
async def dispatch(order_id: PathId, body: DispatchIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.dispatch(
            session, actor=actor, order_id=order_id, expected_version=body.version, department_id=body.department_id,
            co_department_ids=body.co_department_ids, note=body.note,
        )  # fmt: skip
        return await _detail(session, actor, order)


@router.post("/{order_id}/accept", response_model=OrderDetail, summary="The department accepts the order")
async def accept(order_id: PathId, body: Versioned, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.accept(session, actor=actor, order_id=order_id, expected_version=body.version)
        return await _detail(session, actor, order)


@router.post("/{order_id}/return", response_model=OrderDetail, summary="The department returns it: not ours")
async def return_order(order_id: PathId, body: ReasonIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.return_order(
            session, actor=actor, order_id=order_id, expected_version=body.version, reason=body.reason
        )
        return await _detail(session, actor, order)


@router.post("/{order_id}/reply", response_model=OrderDetail, summary="The handling reply to the patient")
async def reply(order_id: PathId, body: TextIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.reply(session, actor=actor, order_id=order_id, expected_version=body.version,
                                    text=body.text)  # fmt: skip
        return await _detail(session, actor, order)


@router.post("/{order_id}/resolve", response_model=OrderDetail, summary="The result")
async def resolve(order_id: PathId, body: TextIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.resolve(session, actor=actor, order_id=order_id, expected_version=body.version,
                                      text=body.text)  # fmt: skip
        return await _detail(session, actor, order)


@router.post("/{order_id}/evaluate", response_model=OrderDetail, summary="The patient's evaluation")
async def evaluate(order_id: PathId, body: EvaluationIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.evaluate(session, actor=actor, order_id=order_id, expected_version=body.version,
                                       satisfied=body.satisfied, comment=body.comment)  # fmt: skip
        return await _detail(session, actor, order)


@router.post("/{order_id}/close", response_model=OrderDetail, summary="Close with a reason")
async def close(order_id: PathId, body: CloseIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.close(session, actor=actor, order_id=order_id, expected_version=body.version,
                                    reason=body.reason, note=body.note)  # fmt: skip
        return await _detail(session, actor, order)


@router.post("/{order_id}/reopen", response_model=OrderDetail, summary="Reopen a closed order (supervisors)")
async def reopen(order_id: PathId, body: NoteIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.reopen(session, actor=actor, order_id=order_id, expected_version=body.version,
                                     note=body.note)  # fmt: skip
        return await _detail(session, actor, order)


@router.post("/{order_id}/merge", response_model=OrderDetail, summary="Merge this duplicate into another order")
async def merge(order_id: PathId, body: MergeIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await service.merge(session, actor=actor, order_id=order_id, expected_version=body.version,
                                    into_id=body.into_id, note=body.note)  # fmt: skip
        return await _detail(session, actor, order)


# --- around the steps ------------------------------------------------------------------------------


@router.post("/{order_id}/notes", response_model=OrderDetail, summary="Add a note to the timeline")
async def add_note(order_id: PathId, body: NoteOnly, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await followup.add_note(session, actor=actor, order_id=order_id, note=body.note)
        return await _detail(session, actor, order)


@router.post("/{order_id}/pause", response_model=OrderDetail, summary="Stop the clock: waiting for the patient")
async def pause(order_id: PathId, body: PauseIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await followup.pause(session, actor=actor, order_id=order_id, expected_version=body.version,
                                     reason=body.reason)  # fmt: skip
        return await _detail(session, actor, order)


@router.post("/{order_id}/resume", response_model=OrderDetail, summary="Start the clock again")
async def resume(order_id: PathId, body: Versioned, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await followup.resume(session, actor=actor, order_id=order_id, expected_version=body.version)
        return await _detail(session, actor, order)


@router.post("/{order_id}/extensions", status_code=201, summary="The department asks for more time")
async def request_extension(order_id: PathId, body: ExtensionIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await followup.request_extension(
            session, actor=actor, order_id=order_id, expected_version=body.version, amount=body.amount,
            reason=body.reason,
        )  # fmt: skip
        return FastJSONResponse(_extension_json(row), status_code=201)


@router.post("/{order_id}/callback", response_model=OrderDetail, summary="Schedule a callback")
async def schedule_callback(
    order_id: PathId, body: CallbackScheduleIn, actor: CurrentActor, session: Session
) -> Response:
    async with session.begin():
        order = await followup.schedule_callback(session, actor=actor, order_id=order_id, at=body.at)
        return await _detail(session, actor, order)


@router.post("/{order_id}/callback-attempts", response_model=OrderDetail, summary="Record a callback attempt")
async def record_attempt(order_id: PathId, body: CallbackAttemptIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        order = await followup.record_attempt(session, actor=actor, order_id=order_id, outcome=body.outcome,
                                              note=body.note)  # fmt: skip
        return await _detail(session, actor, order)


@router.post("/{order_id}/phone", summary="The caller's full number, with a reason (audited)")
async def reveal_phone(order_id: PathId, body: RevealIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        phone = await followup.reveal_phone(session, actor=actor, order_id=order_id, reason=body.reason)
    return FastJSONResponse({"phone": phone, "display": display_phone(phone)})


@router.get("/{order_id}/links", summary="Related orders and contacts")
async def list_links(order_id: PathId, actor: CurrentActor, session: Session) -> Response:
    order = await service.read_order(session, actor=actor, order_id=order_id)
    return FastJSONResponse([_link_json(row) for row in await followup.links(session, order)])


@router.post("/{order_id}/links", status_code=201, summary="Link a related order (by reference) or a contact")
async def add_link(order_id: PathId, body: LinkIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await followup.link(session, actor=actor, order_id=order_id, kind=body.kind, target=body.target)
        return FastJSONResponse(_link_json(row), status_code=201)


@router.get("/{order_id}/attachments", summary="Evidence attached to the order")
async def list_attachments(order_id: PathId, actor: CurrentActor, session: Session) -> Response:
    await service.read_order(session, actor=actor, order_id=order_id)
    rows = await attachments.list_for(session, order_id)
    return FastJSONResponse([attachments.AttachmentRead.of(row).model_dump(mode="json") for row in rows])


@router.post("/{order_id}/attachments", status_code=201, summary="Attach evidence (PDF, image, WAV, MP3; 8 MB)")
async def add_attachment(
    order_id: PathId,
    actor: CurrentActor,
    session: Session,
    file: Annotated[UploadFile, File(description="PDF, PNG, JPEG, GIF, WebP, WAV or MP3, at most 8 MB")],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    raw = await file.read(attachments.MAX_BYTES + 1)
    async with session.begin():
        row = await attachments.store(session, actor=actor, order_id=order_id, filename=file.filename or "evidence",
                                      raw=raw, note=note)  # fmt: skip
        return FastJSONResponse(attachments.AttachmentRead.of(row).model_dump(mode="json"), status_code=201)


@router.get("/{order_id}/attachments/{attachment_id}", summary="Download one piece of evidence")
async def download_attachment(
    order_id: PathId, attachment_id: PathId, actor: CurrentActor, session: Session
) -> Response:
    row = await attachments.fetch(session, actor=actor, order_id=order_id, attachment_id=attachment_id)
    disposition = "inline" if row.content_type.startswith("image/") else "attachment"
    return Response(
        row.data, media_type=row.content_type,
        headers={"Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(row.filename)}",
                 "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=300"},
    )  # fmt: skip
