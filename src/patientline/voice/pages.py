"""IVR flow pages: the list of flows and the flow editor, a tree of node cards from the start node. The
pages only read; their script sends JSON to /api/voice and shows the problems the API finds next to the
node and field they name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.i18n import N_, gettext_all
from patientline.core.validation import PathId
from patientline.knowledge.models import Item
from patientline.routing import service as routing
from patientline.voice import service
from patientline.voice.flows import ENDS, MAX_NODES, FlowDefinition
from patientline.voice.models import IvrFlow, IvrFlowVersion
from patientline.voice.router import flow_json
from patientline.voice.schemas import FlowVersionRead
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.templating import render

router = APIRouter(prefix="/voice", include_in_schema=False)

MAX_ITEM_CHOICES = 1000
KIND_LABELS = {
    "play": N_("Play a prompt"),
    "announcement": N_("Notice between two dates"),
    "hours": N_("Opening hours"),
    "menu": N_("Menu of keys"),
    "collect": N_("Collect digits"),
    "knowledge": N_("Knowledge answer"),
    "voicemail": N_("Voicemail"),
    "callback": N_("Callback"),
    "transfer": N_("Transfer"),
    "hangup": N_("Goodbye (hang up)"),
}
EDITOR_TEXTS = {
    "kinds": KIND_LABELS,
    "branches": {
        "next": N_("Then"),
        "otherwise": N_("Otherwise"),
        "menu_otherwise": N_("No valid key"),
        "collect_next": N_("Digits entered"),
        "collect_otherwise": N_("No digits entered"),
        "open": N_("When open"),
        "closed": N_("When closed"),
        "key": N_("Key {key}"),
    },
    "fields": {
        "id": N_("Node id"),
        "prompt": N_("What the caller hears"),
        "prompt_optional": N_("Goodbye words (optional)"),
        "active_from": N_("Played from"),
        "active_until": N_("Played until"),
        "hours": N_("Opening hours"),
        "hours_help": N_("One or more periods, e.g. 08:00-12:00,13:30-17:30"),
        "working_days_only": N_("Working days only (the hospital calendar)"),
        "choices": N_("Keys"),
        "timeout_seconds": N_("Wait for a key, seconds"),
        "retries": N_("Tries again"),
        "kind": N_("What is keyed in"),
        "min_digits": N_("Fewest digits"),
        "max_digits": N_("Most digits"),
        "item_id": N_("Knowledge item"),
        "item_help": N_("Type the item's number or a word of its question."),
        "max_seconds": N_("Longest message, seconds"),
        "queue_id": N_("Queue"),
        "number": N_("Outside number"),
        "target": N_("Transfer to"),
        "to_queue": N_("a queue"),
        "to_number": N_("an outside number"),
    },
    "collect_kinds": {
        "mrn": N_("Medical record number"),
        "phone": N_("Phone number"),
        "digits": N_("Other digits"),
    },
    "choose": N_("— choose —"),
    "new_node": N_("New node"),
    "new_node_option": N_("+ new node: {kind}"),
    "missing_node": N_("{id} (does not exist)"),
    "leads_nowhere": N_("Leads to {id}, which does not exist."),
    "go_to": N_("→ go to node {id}"),
    "start": N_("Start of the call"),
    "make_start": N_("Make this the start"),
    "delete_node": N_("Delete node"),
    "add_key": N_("Add a key"),
    "change_key": N_("Change key {key}"),
    "remove_key": N_("Remove key {key}"),
    "no_keys_left": N_("Every key is used."),
    "inactive_queue": N_("{name} (inactive)"),
    "unknown_queue": N_("Queue {id} (unknown)"),
    "unknown_item": N_("Not a published public item"),
    "no_spoken": N_("no spoken answer yet"),
    "unreached": N_("Not reached from the start"),
    "unreached_help": N_("No caller reaches these nodes: link them from a node above, or delete them."),
    "an_end": N_("An end: the call leaves the flow here."),
    "bad_id": N_("Lower-case letters, digits and _, starting with a letter, at most 32."),
    "taken_id": N_("Another node is called {id}."),
    "required": N_("Choose where this leads."),
    "start_node": N_("Start node"),
    "draft_problem": N_("{where}: {message}"),
    "flow_field": N_("The flow"),
    "node_label": N_("Node {id}"),
    "saved": N_("Saved"),
    "saved_with_problems": N_("Saved. The draft has problems to mend before it can be published."),
    "unsaved": N_("Unsaved changes"),
    "all_saved": N_("All changes saved"),
    "no_problems": N_("No problems: the draft can be published."),
    "stale": N_(
        "Someone else saved this flow since you opened it. Reload the page to see their changes, then make yours again."
    ),
    "published": N_("Version {number} is live."),
    "went_live": N_("Version {number} is live again."),
    "confirm_live": N_("Put version {number} in front of callers now?"),
    "confirm_delete": N_("Delete this flow? It was never published, so no call went through it."),
    "live": N_("In use"),
    "put_live": N_("Put this version live"),
    "no_versions": N_("Not published yet."),
    "not_published": N_("Not published"),
    "error": N_("Something went wrong."),
    "too_many": N_("A flow has at most {max} nodes."),
}  # fmt: skip


def _version_json(row: IvrFlowVersion) -> dict[str, Any]:
    return FlowVersionRead.model_validate(row).model_dump(mode="json", exclude={"definition"})


async def _names(session: AsyncSession, user_ids: set[int], actor: Actor) -> dict[str, str]:
    """Display names of the people who published, and of the editor (who may publish next)."""
    names: dict[str, str] = {}
    if user_ids:
        found = await session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))
        names = {str(user_id): name for user_id, name in found.tuples()}
    if actor.user_id is not None:
        names[str(actor.user_id)] = actor.display_name
    return names


async def _queue_choices(session: AsyncSession) -> list[dict[str, Any]]:
    return [
        {"id": row.id, "name": f"{row.name} ({row.code})", "active": row.is_active}
        for row in await routing.list_queues(session)
    ]


async def _item_choices(session: AsyncSession) -> list[dict[str, Any]]:
    """The knowledge items a flow may speak: published for the public (as the publish check wants)."""
    query = (
        select(Item.id, Item.question, Item.spoken)
        .where(Item.public.is_(True), Item.live_revision_id.is_not(None))
        .order_by(Item.id)
        .limit(MAX_ITEM_CHOICES)
    )
    rows = await session.execute(query)
    return [{"id": row.id, "question": row.question, "spoken": bool(row.spoken)} for row in rows]


async def _draft_state(session: AsyncSession, row: IvrFlow) -> dict[str, Any]:
    """What the list tells of a flow: how many problems its draft has, whether it differs from the live version."""
    problems = await service.check(session, FlowDefinition.model_validate(row.draft))
    live = await service.get_version(session, row.id, row.live_version) if row.live_version else None
    return {"row": row, "problems": len(problems), "changed": live is not None and live.definition != row.draft}


@router.get("/flows")
async def flows_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_VOICE)
    flows = [await _draft_state(session, row) for row in await service.list_flows(session)]
    return render(request, "voice/flows.html", {"flows": flows})


@router.get("/flows/{flow_id}")
async def flow_editor_page(flow_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_VOICE)
    row = await service.get_flow(session, flow_id)
    versions = await service.versions(session, flow_id)
    publishers = {v.published_by_id for v in versions if v.published_by_id is not None}
    data = {
        "flow": await flow_json(session, row),
        "versions": [_version_json(version) for version in versions],
        "people": await _names(session, publishers, actor),
        "queues": await _queue_choices(session),
        "items": await _item_choices(session),
        "kinds": list(KIND_LABELS),
        "ends": list(ENDS),
        "max_nodes": MAX_NODES,
        "timezone": app_state(request).settings.timezone,
    }
    return render(request, "voice/flow_editor.html", {"row": row, "data": data, "texts": gettext_all(EDITOR_TEXTS)})
