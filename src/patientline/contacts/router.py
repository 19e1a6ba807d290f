"""HTTP API: contacts (list and search, record by hand, code, link, close, export), the disposition
tree, the shift handover log, and the retention run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts import dispositions, handover, labels, queries, scheduled, service
from patientline.contacts.models import Contact, ContactLink, DispositionCode
from patientline.contacts.schemas import (
    Channel,
    CloseIn,
    ContactCreate,
    ContactDetail,
    ContactRead,
    ContactStatus,
    ContactUpdate,
    Direction,
    DispositionCreate,
    DispositionNode,
    DispositionRead,
    DispositionUpdate,
    HandoverCreate,
    HandoverItemRead,
    HandoverRead,
    HandoverUpdate,
    LinkIn,
    LinkRead,
    ReorderIn,
    RevealIn,
    Versioned,
)
from patientline.core import audit
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.errors import PermissionDenied
from patientline.core.masking import mask_name, mask_phone
from patientline.core.validation import MAX_ID, PathId, QueryId
from patientline.routing import service as routing
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api", tags=["contacts"])

WORKBENCH_PATIENT = "/workbench/patients/{id}"
Limit = Annotated[int, Query(ge=1, le=queries.PAGE_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


# --- shapes ----------------------------------------------------------------------------------------


def contact_json(contact: Contact, codes: list[int]) -> dict[str, Any]:
    data = {key: getattr(contact, key) for key in ContactRead.model_fields if hasattr(Contact, key)}
    data |= {"phone_masked": mask_phone(contact.phone), "caller_name_masked": mask_name(contact.caller_name),
             "disposition_ids": codes}  # fmt: skip
    return ContactRead(**data).model_dump(mode="json")


async def detail_json(session: AsyncSession, contact: Contact) -> dict[str, Any]:
    codes = (await service.dispositions_of(session, [contact.id]))[contact.id]
    links = await service.links_of(session, contact.id)
    return ContactDetail(
        **contact_json(contact, codes),
        caller_name=contact.caller_name,
        notes=contact.notes,
        external_ref=contact.external_ref,
        links=await links_read(session, links),
        patient_href=WORKBENCH_PATIENT.format(id=contact.patient_id) if contact.patient_id else None,
    ).model_dump(mode="json")


async def links_read(session: AsyncSession, links: list[ContactLink]) -> list[LinkRead]:
    names = await service.link_labels(session, links)
    return [
        LinkRead(id=row.id, kind=row.kind, target_id=row.target_id, label=names[row.id][0], href=names[row.id][1])
        for row in links
    ]


def handover_json(item: handover.Handover, names: dict[int, str]) -> dict[str, Any]:
    row = item.row
    return HandoverRead(
        id=row.id, shift_date=row.shift_date, shift=row.shift, author_id=row.author_id,
        author_name=names.get(row.author_id or 0, ""), notes=row.notes, acknowledged_by_id=row.acknowledged_by_id,
        acknowledged_by_name=names.get(row.acknowledged_by_id or 0, ""), acknowledged_at=row.acknowledged_at,
        created_at=row.created_at, version=row.version, pending=item.pending,
        items=[HandoverItemRead(id=i.id, position=i.position, text=i.text, done_at=i.done_at, done_by_id=i.done_by_id,
                                done_by_name=names.get(i.done_by_id or 0, "")) for i in item.items],
    ).model_dump(mode="json")  # fmt: skip


async def user_names(session: AsyncSession) -> dict[int, str]:
    """Staff names for lists (a centre has hundreds of users at most)."""
    rows = await session.execute(select(User.id, User.display_name))
    return {user_id: name for user_id, name in rows}


Text = Annotated[str | None, Query(max_length=100)]
PhoneText = Annotated[str | None, Query(max_length=30)]


def contact_filter(
    date_from: date | None = None,
    date_to: date | None = None,
    channel: Channel | None = None,
    direction: Direction | None = None,
    agent_id: QueryId = None,
    queue_id: QueryId = None,
    disposition_id: QueryId = None,
    status: ContactStatus | None = None,
    patient_id: QueryId = None,
    phone: PhoneText = None,
    q: Text = None,
) -> queries.ContactFilter:
    """The filters the list and the export share, from the query string."""
    return queries.ContactFilter(
        date_from=date_from, date_to=date_to, channel=channel, direction=direction, agent_id=agent_id,
        queue_id=queue_id, disposition_id=disposition_id, status=status, patient_id=patient_id, phone=phone, text=q,
    )  # fmt: skip


Filters = Annotated[queries.ContactFilter, Depends(contact_filter)]


# --- contacts --------------------------------------------------------------------------------------


@router.get("/contacts", summary="Contacts with filters, the latest first (numbers and names masked)")
async def list_contacts(
    actor: CurrentActor, session: Session, filters: Filters, limit: Limit = 50, offset: Offset = 0
) -> Response:
    actor.require(Permission.HANDLE_CONTACTS)
    where = replace(filters, limit=limit, offset=offset)
    rows, total = await queries.search(session, where)
    codes = await service.dispositions_of(session, [row.id for row in rows])
    return FastJSONResponse({"total": total, "items": [contact_json(row, codes[row.id]) for row in rows]})


@router.get("/contacts/export.csv", summary="The contacts that match the filters as CSV (numbers and names masked)")
async def export_contacts(request: Request, actor: CurrentActor, session: Session, where: Filters) -> StreamingResponse:
    actor.require(Permission.HANDLE_CONTACTS)
    queries.normalised_phone(where.phone)  # a bad number answers 422 before the download starts
    async with session.begin():
        filters = {name: str(getattr(where, name)) for name in queries.FILTER_FIELDS if getattr(where, name)}
        filters.pop("phone", None)  # the audit names the filter, not the number
        filters.pop("text", None)
        searched = {"phone_filter": bool(where.phone), "text_filter": bool(where.text)}
        audit.record(session, actor=actor, action="contacts.exported", target_type="contact",
                     after={"filters": filters, **searched})  # fmt: skip
        queue_names = {row.id: row.name for row in await routing.list_queues(session)}
        agent_names = await user_names(session)
    texts = labels.translated(labels.CHANNEL_LABELS, labels.DIRECTION_LABELS, labels.STATUS_LABELS)
    db = app_state(request).db

    async def lines() -> AsyncIterator[bytes]:
        async with db.sessions() as reader:  # the request's session is gone while the body streams
            async for line in queries.export_lines(reader, where, queue_names=queue_names, agent_names=agent_names,
                                                   labels=texts):  # fmt: skip
                yield line.encode("utf-8")

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"', "Cache-Control": "no-store"},
    )


@router.post("/contacts", response_model=ContactDetail, status_code=201, summary="Record a contact by hand")
async def create_contact(body: ContactCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        contact = await service.create(session, actor=actor, data=body)
        return FastJSONResponse(await detail_json(session, contact), status_code=201)


@router.get("/contacts/{contact_id}", response_model=ContactDetail, summary="One contact")
async def get_contact(contact_id: PathId, actor: CurrentActor, session: Session) -> Response:
    contact = await service.read(session, actor=actor, contact_id=contact_id)
    return FastJSONResponse(await detail_json(session, contact))


@router.patch("/contacts/{contact_id}", response_model=ContactDetail, summary="Notes, subject, codes, patient")
async def update_contact(contact_id: PathId, body: ContactUpdate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        contact = await service.update(session, actor=actor, contact_id=contact_id, data=body)
        return FastJSONResponse(await detail_json(session, contact))


@router.post("/contacts/{contact_id}/close", response_model=ContactDetail, summary="Close a coded contact")
async def close_contact(contact_id: PathId, body: CloseIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        contact = await service.close(session, actor=actor, contact_id=contact_id, expected_version=body.version,
                                      disposition_ids=body.disposition_ids, notes=body.notes)  # fmt: skip
        return FastJSONResponse(await detail_json(session, contact))


@router.post("/contacts/{contact_id}/links", response_model=LinkRead, status_code=201, summary="Link an item")
async def add_link(contact_id: PathId, body: LinkIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.add_link(session, actor=actor, contact_id=contact_id, data=body)
        link = (await links_read(session, [row]))[0]
        return FastJSONResponse(link.model_dump(mode="json"), status_code=201)


@router.delete("/contacts/{contact_id}/links/{link_id}", status_code=204, summary="Remove a link")
async def remove_link(contact_id: PathId, link_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await service.remove_link(session, actor=actor, contact_id=contact_id, link_id=link_id)
    return Response(status_code=204)


@router.post("/contacts/{contact_id}/reveal-phone", summary="The full number, with a reason (audited)")
async def reveal_phone(contact_id: PathId, body: RevealIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        phone = await service.reveal_phone(session, actor=actor, contact_id=contact_id, reason=body.reason)
    return FastJSONResponse({"phone": phone}, headers={"Cache-Control": "no-store"})


@router.post("/contacts/retention/run", summary="Anonymise contacts past the retention period now")
async def run_retention(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_CONTACTS)
    days = app_state(request).settings.contact_retention_days
    async with session.begin():
        count = await scheduled.run(session, retention_days=days, actor=actor)
    return FastJSONResponse({"anonymised": count, "retention_days": days})


# --- dispositions ----------------------------------------------------------------------------------


def _nodes(tree: dispositions.Tree, used: set[int], parent_id: int | None, active_only: bool) -> list[DispositionNode]:
    nodes = []
    for row in tree.children.get(parent_id, []):
        if row.is_active or not active_only:
            values = DispositionRead.model_validate(row).model_dump()
            nodes.append(
                DispositionNode(**values, in_use=row.id in used, children=_nodes(tree, used, row.id, active_only))
            )
    return nodes


def _require_tree_reader(actor: Actor) -> None:
    if not (actor.can(Permission.HANDLE_CONTACTS) or actor.can(Permission.CONFIGURE_CONTACTS)):
        raise PermissionDenied("You do not have permission to do this.")


@router.get("/dispositions", response_model=list[DispositionNode], summary="The disposition tree")
async def disposition_tree(actor: CurrentActor, session: Session, active: bool = False) -> Response:
    _require_tree_reader(actor)
    tree = await dispositions.load_tree(session)
    used = await dispositions.codes_in_use(session) if actor.can(Permission.CONFIGURE_CONTACTS) else set()
    nodes = _nodes(tree, used, None, active)
    return FastJSONResponse([node.model_dump(mode="json") for node in nodes])


def _code_json(row: DispositionCode) -> dict[str, Any]:
    return DispositionRead.model_validate(row).model_dump(mode="json")


@router.post("/dispositions", response_model=DispositionRead, status_code=201, summary="Add a code")
async def create_code(body: DispositionCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await dispositions.create_code(session, actor=actor, data=body)
        return FastJSONResponse(_code_json(row), status_code=201)


@router.post("/dispositions/reorder", response_model=list[DispositionRead], summary="Order the codes of one level")
async def reorder_codes(body: ReorderIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        rows = await dispositions.reorder(session, actor=actor, data=body)
        return FastJSONResponse([_code_json(row) for row in rows])


@router.patch("/dispositions/{code_id}", response_model=DispositionRead, summary="Rename, move, (de)activate")
async def update_code(code_id: PathId, body: DispositionUpdate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await dispositions.update_code(session, actor=actor, code_id=code_id, data=body)
        return FastJSONResponse(_code_json(row))


@router.delete("/dispositions/{code_id}", status_code=204, summary="Delete an unused code")
async def delete_code(
    code_id: PathId, actor: CurrentActor, session: Session, version: Annotated[int, Query(ge=1, le=MAX_ID)]
) -> Response:
    async with session.begin():
        await dispositions.delete_code(session, actor=actor, code_id=code_id, expected_version=version)
    return Response(status_code=204)


# --- shift handover --------------------------------------------------------------------------------


@router.get("/handovers", summary="Handovers: unacknowledged first, then the latest shift first")
async def list_handovers(
    actor: CurrentActor, session: Session, pending: bool = False, limit: Limit = 20, offset: Offset = 0
) -> Response:
    rows, total = await handover.list_handovers(session, actor=actor, limit=limit, offset=offset, pending_only=pending)
    names = await user_names(session)
    return FastJSONResponse({"total": total, "items": [handover_json(row, names) for row in rows]})


@router.post("/handovers", response_model=HandoverRead, status_code=201, summary="Write a shift's handover")
async def write_handover(body: HandoverCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        item = await handover.write(session, actor=actor, data=body)
        return FastJSONResponse(handover_json(item, await user_names(session)), status_code=201)


@router.get("/handovers/{handover_id}", response_model=HandoverRead, summary="One handover")
async def get_handover(handover_id: PathId, actor: CurrentActor, session: Session) -> Response:
    item = await handover.read(session, actor=actor, handover_id=handover_id)
    return FastJSONResponse(handover_json(item, await user_names(session)))


@router.patch("/handovers/{handover_id}", response_model=HandoverRead, summary="The author adds notes or items")
async def amend_handover(handover_id: PathId, body: HandoverUpdate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        item = await handover.amend(session, actor=actor, handover_id=handover_id, data=body)
        return FastJSONResponse(handover_json(item, await user_names(session)))


@router.post("/handovers/{handover_id}/acknowledge", response_model=HandoverRead, summary="Acknowledge (next shift)")
async def acknowledge_handover(handover_id: PathId, body: Versioned, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        item = await handover.acknowledge(session, actor=actor, handover_id=handover_id, expected_version=body.version)
        return FastJSONResponse(handover_json(item, await user_names(session)))


@router.post("/handovers/{handover_id}/items/{item_id}/done", response_model=HandoverItemRead, summary="Tick off")
async def item_done(handover_id: PathId, item_id: PathId, actor: CurrentActor, session: Session) -> Response:
    return await _tick(session, actor, handover_id, item_id, done=True)


@router.post("/handovers/{handover_id}/items/{item_id}/undone", response_model=HandoverItemRead, summary="Untick")
async def item_undone(handover_id: PathId, item_id: PathId, actor: CurrentActor, session: Session) -> Response:
    return await _tick(session, actor, handover_id, item_id, done=False)


async def _tick(session: AsyncSession, actor: Actor, handover_id: int, item_id: int, *, done: bool) -> Response:
    async with session.begin():
        row = await handover.set_item_done(session, actor=actor, handover_id=handover_id, item_id=item_id, done=done)
        names = await user_names(session)
        body = HandoverItemRead(id=row.id, position=row.position, text=row.text, done_at=row.done_at,
                                done_by_id=row.done_by_id, done_by_name=names.get(row.done_by_id or 0, ""))  # fmt: skip
        return FastJSONResponse(body.model_dump(mode="json"))
