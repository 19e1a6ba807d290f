"""IVR flows: create and edit the draft, check it, publish it as a new version, put an earlier
version back live; the only writers of `voice.models`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from patientline.core import audit, clock
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.db import flush_or_conflict
from patientline.core.errors import Conflict, InvalidInput, NotFound, require_version
from patientline.core.i18n import N_, gettext
from patientline.knowledge.models import Item
from patientline.routing.models import RoutingQueue
from patientline.voice.flows import Callback, FlowDefinition, Knowledge, Transfer, problem, problems, recorded_ids
from patientline.voice.models import IvrFlow, IvrFlowVersion, VoicePrompt
from patientline.voice.schemas import FlowCreate, FlowUpdate, GoLiveIn, PublishIn

AUDIT_TARGET = "ivr_flow"
GREETING = N_("Hello, you have reached {name}.")
TAKEN = N_("Another flow has this name or number.")
UNKNOWN_QUEUE = N_("There is no active queue {id}.")
UNKNOWN_ITEM = N_("Knowledge item {id} is not published for the public.")
UNKNOWN_RECORDING = N_("There is no recorded prompt {id}.")


def starter_flow(name: str) -> FlowDefinition:
    """A new flow's first draft: a greeting, then goodbye (publishable as it stands)."""
    greeting = {"text": gettext(GREETING).format(name=name)}
    return FlowDefinition.model_validate(
        {"start": "welcome", "nodes": [
            {"type": "play", "id": "welcome", "prompt": greeting, "next": "goodbye"},
            {"type": "hangup", "id": "goodbye"},
        ]}
    )  # fmt: skip


async def list_flows(session: AsyncSession) -> list[IvrFlow]:
    return list(await session.scalars(select(IvrFlow).order_by(IvrFlow.name)))


async def get_flow(session: AsyncSession, flow_id: int) -> IvrFlow:
    row = await session.get(IvrFlow, flow_id)
    if row is None:
        raise NotFound("No such IVR flow.", details={"id": flow_id})
    return row


async def check(session: AsyncSession, flow: FlowDefinition) -> list[dict[str, object]]:
    """The flow's own problems, then what it names outside itself: active queues, public published items,
    recorded prompts."""
    queues = {node.id: node.queue_id for node in flow.nodes if isinstance(node, Callback | Transfer) and node.queue_id}
    items = {node.id: node.item_id for node in flow.nodes if isinstance(node, Knowledge)}
    recordings = recorded_ids(flow)
    active = await _existing(session, RoutingQueue.id, queues.values(), RoutingQueue.is_active.is_(True))
    published = Item.public.is_(True), Item.live_revision_id.is_not(None)
    public = await _existing(session, Item.id, items.values(), *published)
    uploaded = await _existing(session, VoicePrompt.id, recordings.values())
    outside = (_missing(queues, active, "queue_id", UNKNOWN_QUEUE) + _missing(items, public, "item_id", UNKNOWN_ITEM)
               + _missing(recordings, uploaded, "prompt", UNKNOWN_RECORDING))  # fmt: skip
    return problems(flow) + outside


def _missing(named: dict[str, int], found: set[int], field: str, message: str) -> list[dict[str, object]]:
    return [problem(node, field, "unknown", message, id=ref) for node, ref in named.items() if ref not in found]


async def _existing(
    session: AsyncSession, column: InstrumentedAttribute[int], ids: Iterable[int], *conditions: ColumnElement[bool]
) -> set[int]:
    """Which of `ids` name a row that meets `conditions` (no query when there are none)."""
    wanted = set(ids)
    return set(await session.scalars(select(column).where(column.in_(wanted), *conditions))) if wanted else set()


def snapshot(row: IvrFlow) -> dict[str, object]:
    return {"name": row.name, "number": row.number, "description": row.description, "draft": row.draft,
            "live_version": row.live_version}  # fmt: skip


async def create_flow(session: AsyncSession, *, actor: Actor, data: FlowCreate) -> IvrFlow:
    actor.require(Permission.CONFIGURE_VOICE)
    await _require_free(session, name=data.name, number=data.number, own_id=None)
    draft = data.draft or starter_flow(data.name)
    row = IvrFlow(name=data.name, number=data.number, description=data.description, draft=_stored(draft))
    session.add(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="voice.flow.create", target_type=AUDIT_TARGET, target_id=row.id,
                 after=snapshot(row))  # fmt: skip
    return row


async def update_flow(session: AsyncSession, *, actor: Actor, flow_id: int, data: FlowUpdate) -> IvrFlow:
    """The draft may have problems while it is edited; only publishing needs it whole."""
    actor.require(Permission.CONFIGURE_VOICE)
    row = await get_flow(session, flow_id)
    require_version(expected=data.version, current=row.version)
    before = snapshot(row)
    sent = data.model_fields_set
    await _require_free(session, name=data.name, number=data.number if "number" in sent else None, own_id=row.id)
    if data.name is not None:
        row.name = data.name
    if "number" in sent:
        row.number = data.number
    if data.description is not None:
        row.description = data.description
    if data.draft is not None:
        row.draft = _stored(data.draft)
    old, new = audit.changed_fields(before, snapshot(row))
    if new:
        await flush_or_conflict(session)
        audit.record(session, actor=actor, action="voice.flow.update", target_type=AUDIT_TARGET, target_id=row.id,
                     before=old, after=new)  # fmt: skip
    return row


async def uses_of_recordings(session: AsyncSession) -> dict[int, list[str]]:
    """For each recorded prompt played somewhere: the names of the flows whose draft or live version plays it."""
    live = select(IvrFlowVersion.flow_id, IvrFlowVersion.definition).join(
        IvrFlow, (IvrFlow.id == IvrFlowVersion.flow_id) & (IvrFlow.live_version == IvrFlowVersion.number)
    )
    live_definitions: dict[int, dict[str, Any]] = dict((await session.execute(live)).tuples().all())
    found: dict[int, list[str]] = {}
    for flow in await list_flows(session):
        kept = [stored for stored in (flow.draft, live_definitions.get(flow.id)) if stored]
        definitions = [FlowDefinition.model_validate(stored) for stored in kept]
        played = {ref for definition in definitions for ref in recorded_ids(definition).values()}
        for prompt_id in sorted(played):
            found.setdefault(prompt_id, []).append(flow.name)
    return found


async def publish(session: AsyncSession, *, actor: Actor, flow_id: int, data: PublishIn) -> IvrFlowVersion:
    """The draft becomes the next version and goes live, if it has no problems."""
    actor.require(Permission.CONFIGURE_VOICE)
    row = await get_flow(session, flow_id)
    require_version(expected=data.version, current=row.version)
    found = await check(session, FlowDefinition.model_validate(row.draft))
    if found:
        raise InvalidInput("The flow cannot be published yet: mend the problems listed.",
                           error_id="flow_not_publishable", details=found)  # fmt: skip
    latest = await session.scalar(select(func.max(IvrFlowVersion.number)).where(IvrFlowVersion.flow_id == row.id))
    version = IvrFlowVersion(flow_id=row.id, number=(latest or 0) + 1, definition=row.draft, note=data.note,
                             published_at=clock.now(), published_by_id=actor.user_id)  # fmt: skip
    session.add(version)
    row.live_version = version.number
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="voice.flow.publish", target_type=AUDIT_TARGET, target_id=row.id,
                 after={"number": version.number, "note": data.note})  # fmt: skip
    return version


async def go_live(session: AsyncSession, *, actor: Actor, flow_id: int, data: GoLiveIn) -> IvrFlow:
    """An earlier version back in front of callers (the draft stays as it is)."""
    actor.require(Permission.CONFIGURE_VOICE)
    row = await get_flow(session, flow_id)
    require_version(expected=data.version, current=row.version)
    version = await get_version(session, flow_id, data.number)
    if found := await check(session, FlowDefinition.model_validate(version.definition)):
        raise InvalidInput("This version names what is gone now; it cannot go back live.",
                           error_id="version_not_playable", details=found)  # fmt: skip
    before = row.live_version
    row.live_version = data.number
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="voice.flow.go_live", target_type=AUDIT_TARGET, target_id=row.id,
                 before={"live_version": before}, after={"live_version": data.number})  # fmt: skip
    return row


async def delete_flow(session: AsyncSession, *, actor: Actor, flow_id: int, expected_version: int) -> None:
    """Only a flow never published: a published one is history that calls point to."""
    actor.require(Permission.CONFIGURE_VOICE)
    row = await get_flow(session, flow_id)
    require_version(expected=expected_version, current=row.version)
    if row.live_version is not None:
        raise Conflict("This flow has been published; take its number away instead.", error_id="flow_published")
    before = snapshot(row)
    await session.delete(row)
    await flush_or_conflict(session)
    audit.record(session, actor=actor, action="voice.flow.delete", target_type=AUDIT_TARGET, target_id=flow_id,
                 before=before)  # fmt: skip


async def versions(session: AsyncSession, flow_id: int) -> list[IvrFlowVersion]:
    await get_flow(session, flow_id)
    query = select(IvrFlowVersion).where(IvrFlowVersion.flow_id == flow_id).order_by(IvrFlowVersion.number.desc())
    return list(await session.scalars(query))


async def get_version(session: AsyncSession, flow_id: int, number: int) -> IvrFlowVersion:
    row = await session.scalar(
        select(IvrFlowVersion).where(IvrFlowVersion.flow_id == flow_id, IvrFlowVersion.number == number)
    )
    if row is None:
        raise NotFound("This flow has no such version.", details={"id": flow_id, "number": number})
    return row


async def live_flow(session: AsyncSession, number: str) -> tuple[IvrFlowVersion, FlowDefinition] | None:
    """What a caller dialling `number` meets: the live version of the flow on that number, if any."""
    flow = await session.scalar(select(IvrFlow).where(IvrFlow.number == number, IvrFlow.live_version.is_not(None)))
    if flow is None or flow.live_version is None:
        return None
    version = await get_version(session, flow.id, flow.live_version)
    return version, FlowDefinition.model_validate(version.definition)


async def _require_free(session: AsyncSession, *, name: str | None, number: str | None, own_id: int | None) -> None:
    for column, value, field in ((IvrFlow.name, name, "name"), (IvrFlow.number, number, "number")):
        if value is None:
            continue
        other = await session.scalar(select(IvrFlow.id).where(column == value))
        if other is not None and other != own_id:
            raise Conflict("Another flow has this name or number.", error_id="flow_taken",
                           details=[problem(None, field, "taken", TAKEN)])  # fmt: skip


def _stored(flow: FlowDefinition) -> dict[str, Any]:
    return flow.model_dump(mode="json", exclude_none=True)
