"""Voice pages: the IVR flows and their editor (a tree of node cards from the start node), the
supervisor's live calls and the call log with its recordings. The pages only read; their scripts send
JSON to /api/voice (the flow editor shows the problems the API finds next to the node and field they
name; the live calls are read from /api/voice/live every two seconds)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Permission
from patientline.core.errors import NotFound, PermissionDenied
from patientline.core.i18n import N_, gettext, gettext_all
from patientline.core.validation import MAX_ID, PathId
from patientline.knowledge.models import Item
from patientline.routing import service as routing
from patientline.voice import call_log, phones, recorded, selftest, service
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
        "recorded": N_("Recorded prompt"),
        "words_help": N_("Spoken when no recording is chosen; with one, kept as what it says."),
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
    "speak_words": N_("None: speak the words"),
    "recording_option": N_("{name} ({seconds} s)"),
    "missing_recording": N_("Recording {id} (deleted)"),
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


async def _recording_choices(session: AsyncSession) -> list[dict[str, Any]]:
    return [
        {"id": row.id, "name": row.name, "seconds": row.seconds, "audio_url": f"/api/voice/prompts/{row.id}/audio"}
        for row in await recorded.list_prompts(session)
    ]


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


@router.get("/prompts")
async def prompts_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.CONFIGURE_VOICE)
    played_by = await service.uses_of_recordings(session)
    prompts = [{"row": row, "played_by": played_by.get(row.id, [])} for row in await recorded.list_prompts(session)]
    return render(request, "voice/prompts.html", {"prompts": prompts, "max_mb": recorded.MAX_BYTES // (1024 * 1024),
                                                  "max_minutes": recorded.MAX_SECONDS // 60})  # fmt: skip


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
        "recordings": await _recording_choices(session),
        "kinds": list(KIND_LABELS),
        "ends": list(ENDS),
        "max_nodes": MAX_NODES,
        "timezone": app_state(request).settings.timezone,
    }
    return render(request, "voice/flow_editor.html", {"row": row, "data": data, "texts": gettext_all(EDITOR_TEXTS)})


# ---- live calls and the call log ---------------------------------------------------------------------

LIVE_TEXTS = {
    "stages": {
        "answering": N_("Answering"),
        "ivr": N_("In the IVR"),
        "queued": N_("Waiting in a queue"),
        "ringing": N_("Ringing an agent"),
        "talking": N_("Talking"),
        "voicemail": N_("Leaving a voicemail"),
        "ringing_agent": N_("Calling out: ringing the agent"),
        "dialling": N_("Calling out: ringing the patient"),
    },
    "on_hold": N_("On hold"),
    "consulting": N_("Consulting a colleague"),
    "conference": N_("Three-way"),
    "watch": {
        "listen": N_("Supervisor listening"),
        "whisper": N_("Supervisor whispering"),
        "barge": N_("Supervisor on the call"),
    },
    "taken_over": N_("Taken over by a supervisor"),
    "handed_over": N_("Handed over to a colleague"),
    "ringing_you": N_("Ringing your phone…"),
    "confirm_hang_up": N_("Hang up the call with {caller}? It ends for everyone on it."),
    "confirm_take_over": N_("Take over the call with {caller}? The agent is hung up and you talk with the caller."),
    "unknown_agent": N_("User {id}"),
    "unknown_queue": N_("Queue {id}"),
    "unknown_caller": N_("an unknown number"),
    "error": N_("Something went wrong."),
}
END_REASONS = {
    "caller_hung_up": N_("The caller hung up"),
    "agent_hung_up": N_("The agent hung up"),
    "supervisor_hung_up": N_("The supervisor hung up"),
    "transferee_hung_up": N_("The person it was passed to hung up"),
    "transfer_unanswered": N_("Nobody answered where it was passed"),
    "ended_by_supervisor": N_("Ended by a supervisor"),
    "voicemail": N_("Voicemail left"),
    "callback_requested": N_("Callback requested"),
    "ivr_goodbye": N_("Ended in the IVR"),
    "number_unavailable": N_("The outside number was not reached"),
    "queue_closed": N_("The queue was closed"),
    "queue_refused": N_("The queue did not take the call"),
    "expired": N_("No agent answered in time"),
    "no_flow": N_("No flow answers the number dialled"),
    "worker_failed": N_("The line failed"),
    "error": N_("The line failed"),
    "patient_hung_up": N_("The patient hung up"),
    "busy": N_("The number was busy"),
    "declined": N_("The call was declined"),
    "not_answered": N_("Nobody answered"),
    "number_unknown": N_("The number does not exist"),
    "failed": N_("The call could not be placed"),
    "agent_cancelled": N_("The agent stopped dialling"),
    "agent_phone_not_answered": N_("The agent's phone did not answer"),
}
CALL_TEXTS = {
    "cannot_play": N_("The recording cannot be played; it may have been deleted by the retention policy."),
}
CALL_LOG_LIMIT = 100
MAX_CALL_LOG_LIMIT = 500


async def _contact_handlers(session: AsyncSession) -> dict[str, str]:
    """Names of the people a live call can be with: active users who handle contacts."""
    return {str(u.id): u.display_name for u in await routing.contact_handlers(session)}


@router.get("/live")
async def live_page(request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.SUPERVISE)
    data = {
        "line_on": app_state(request).voice is not None,
        "queues": {str(row.id): row.name for row in await routing.list_queues(session)},
        "people": await _contact_handlers(session),
    }
    context = {"data": data, "texts": gettext_all(LIVE_TEXTS), "self_tests": await selftest.recent(session, 10),
               "self_test_minutes": app_state(request).settings.voice_self_test_minutes}  # fmt: skip
    return render(request, "voice/live.html", context)


def _clock(seconds: float | None) -> str:
    """A length of time as m:ss (h:mm:ss from an hour)."""
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _log_row(call: dict[str, Any], queues: dict[int, str], people: dict[int, str]) -> dict[str, Any]:
    started = datetime.fromisoformat(call["started_at"])
    ended = datetime.fromisoformat(call["ended_at"]) if call["ended_at"] else None
    reason = call["end_reason"]
    return call | {
        "started": started,
        "ended_text": gettext(END_REASONS[reason]) if reason in END_REASONS else reason,
        "queue": queues.get(call["queue_id"]) if call["queue_id"] else None,
        "agent": people.get(call["agent_id"]) if call["agent_id"] else None,
        "duration": _clock((ended - started).total_seconds()) if ended else "",
        "recording_length": _clock(call["recording_seconds"]),
    }


@router.get("/phone")
async def phone_page(request: Request, actor: CurrentActor, session: Session,
                     user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> Response:  # fmt: skip
    """A desk phone (the agent's own; an administrator's choice with `user_id`): where and as whom it
    registers, a new password (shown once), revoke."""
    if user_id is None or user_id == actor.user_id:
        actor.require(Permission.HANDLE_CONTACTS)
        if actor.user_id is None:
            raise PermissionDenied("Only a person has a desk phone.")
        user_id, owner = actor.user_id, None
    else:
        phones.require_own_or_admin(actor, user_id)
        owner = await session.get(User, user_id)
        if owner is None:
            raise NotFound("No such user.")
    shown = await phones.setup(session, app_state(request).settings, user_id)
    context = {"phone": shown, "owner": owner, "voice_on": app_state(request).settings.voice}
    return render(request, "voice/phone.html", context)


@router.get("/calls")
async def calls_page(
    request: Request,
    actor: CurrentActor,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=MAX_CALL_LOG_LIMIT)] = CALL_LOG_LIMIT,
) -> Response:
    actor.require(Permission.HANDLE_CONTACTS)
    calls = await call_log.list_calls(session, actor=actor, limit=limit)  # an agent: the calls they answered
    queues = {row.id: row.name for row in await routing.list_queues(session)}
    agent_ids = {call["agent_id"] for call in calls if call["agent_id"]}
    people: dict[int, str] = {}
    if agent_ids:
        found = await session.execute(select(User.id, User.display_name).where(User.id.in_(agent_ids)))
        people = dict(found.tuples().all())
    rows = [_log_row(call, queues, people) for call in calls]
    reasons = sorted({(row["end_reason"], row["ended_text"]) for row in rows if row["end_reason"]}, key=lambda r: r[1])
    context = {
        "calls": rows,
        "reasons": reasons,
        "more": min(limit * 2, MAX_CALL_LOG_LIMIT) if len(rows) == limit < MAX_CALL_LOG_LIMIT else None,
        "sees_all": actor.can(Permission.SUPERVISE),
        "texts": gettext_all(CALL_TEXTS),
    }
    return render(request, "voice/calls.html", context)
