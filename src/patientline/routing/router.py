"""Routing API: an agent's presence and work, tasks coming in from the channels, the supervisor's live
view and forced steps, and the configuration of queues, members and agents' profiles."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.config import Settings
from patientline.core.errors import Conflict, DomainError
from patientline.core.validation import MAX_ID, PathId
from patientline.routing import service
from patientline.routing.core import Reason
from patientline.routing.engine import LINE_CALL_REF, Engine, RouterUnavailable
from patientline.routing.models import RoutingTask
from patientline.routing.schemas import (
    CompleteIn,
    MemberIn,
    MemberRead,
    NotReadyIn,
    PriorityIn,
    ProfileIn,
    ProfileRead,
    QueueCreate,
    QueueRead,
    QueueTarget,
    QueueUpdate,
    TaskCreate,
)
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/routing", tags=["routing"])
log = logging.getLogger(__name__)


def running_engine(request: Request) -> Engine:
    engine = app_state(request).routing
    if engine is None:
        raise RouterUnavailable
    return engine


RoutingEngine = Annotated[Engine, Depends(running_engine)]


def _agent(actor: Actor) -> int:
    """The acting agent's user id (contacts:handle)."""
    actor.require(Permission.HANDLE_CONTACTS)
    assert actor.user_id is not None  # noqa: S101 - people and tokens act as a user
    return actor.user_id


async def _reconfigure(request: Request, what: str, id_: int = 0) -> None:
    """Applies a saved change at once when this node runs the router (others hear the event)."""
    engine = app_state(request).routing
    if engine is not None and engine.leading:
        await engine.reconfigure(what, id_)


# --- the agent -------------------------------------------------------------------------------------


@router.get("/me", summary="My routing status, the offer ringing for me, my tasks and queues")
async def me(actor: CurrentActor, engine: RoutingEngine) -> Response:
    return FastJSONResponse(await engine.me(_agent(actor)))


@router.post("/me/login", summary="Log in to routing (not ready until ready)")
async def log_in(actor: CurrentActor, engine: RoutingEngine) -> Response:
    user_id = _agent(actor)
    await engine.login(user_id)
    return FastJSONResponse(await engine.me(user_id))


@router.post("/me/ready", summary="Ready for offers")
async def ready(actor: CurrentActor, engine: RoutingEngine) -> Response:
    user_id = _agent(actor)
    await engine.ready(user_id)
    return FastJSONResponse(await engine.me(user_id))


@router.post("/me/not-ready", summary="Not ready, with a reason")
async def not_ready(body: NotReadyIn, actor: CurrentActor, engine: RoutingEngine) -> Response:
    user_id = _agent(actor)
    await engine.not_ready(user_id, Reason(body.reason))
    return FastJSONResponse(await engine.me(user_id))


@router.post("/me/logout", summary="Log out of routing (refused with work in hand)")
async def log_out(actor: CurrentActor, engine: RoutingEngine) -> Response:
    user_id = _agent(actor)
    await engine.logout(user_id)
    return FastJSONResponse(await engine.me(user_id))


@router.post("/me/wrap-up/end", summary="Done with wrap-up")
async def end_wrap_up(actor: CurrentActor, engine: RoutingEngine) -> Response:
    user_id = _agent(actor)
    await engine.end_wrap_up(user_id)
    return FastJSONResponse(await engine.me(user_id))


@router.post("/tasks/{task_id}/accept", summary="Take the task ringing for me (answers the screen pop's contact_id)")
async def accept(task_id: PathId, actor: CurrentActor, engine: RoutingEngine, session: Session) -> Response:
    answer = await engine.accept(task_id, _agent(actor))
    answer["contact_id"] = await _open_contact(session, actor, task_id, engine.settings)
    return FastJSONResponse(answer)


async def _open_contact(session: Session, actor: Actor, task_id: int, settings: Settings) -> int | None:
    """The accepted task's contact record (made once), which the agent bar opens in the workbench, and
    for a chat, the agent joins it; the task stays accepted even if the record cannot be made (the
    agent can still search by hand)."""
    from patientline.assistant import dialogue
    from patientline.contacts import service as contacts

    try:
        async with session.begin():
            task = await session.get(RoutingTask, task_id)
            if task is None:
                return None
            contact_id = (await contacts.open_for_task(session, actor=actor, task=task)).id
            if task.channel == "chat":
                await dialogue.joined(session, actor=actor, task=task, contact_id=contact_id, settings=settings)
            return contact_id
    except DomainError as exc:
        log.warning("no contact record for an accepted task", extra={"task_id": task_id, "error_id": exc.error_id})
        return None


@router.post("/tasks/{task_id}/decline", summary="Refuse the task ringing for me")
async def decline(task_id: PathId, actor: CurrentActor, engine: RoutingEngine) -> Response:
    return FastJSONResponse(await engine.decline(task_id, _agent(actor)))


@router.post("/tasks/{task_id}/complete", summary="Finish my task (wrap-up per the queue's policy)")
async def complete(
    task_id: PathId, actor: CurrentActor, engine: RoutingEngine, session: Session, body: CompleteIn | None = None
) -> Response:
    wrap_up = body.wrap_up if body is not None else False
    answer = await engine.complete(task_id, _agent(actor), wrap_up=wrap_up)
    await end_contact(session, task_id)
    return FastJSONResponse(answer)


async def end_contact(session: AsyncSession, task_id: int) -> None:
    from patientline.contacts import service as contacts

    try:
        async with session.begin():
            await contacts.end_for_task(session, task_id=task_id)
    except DomainError as exc:
        log.warning("the contact's end was not recorded", extra={"task_id": task_id, "error_id": exc.error_id})


@router.post("/tasks/{task_id}/transfer", summary="Pass my task on to another queue")
async def transfer(task_id: PathId, body: QueueTarget, actor: CurrentActor, engine: RoutingEngine) -> Response:
    task = engine.tasks.get(task_id)
    if task is not None and (task.external_ref or "").startswith(LINE_CALL_REF):  # the call must go along
        raise Conflict("Transfer a phone call with the call's controls, so the caller goes along.",
                       error_id="voice_task")  # fmt: skip
    return FastJSONResponse(await engine.transfer(task_id, _agent(actor), body.queue_id))


# --- the channels ----------------------------------------------------------------------------------


@router.post("/tasks", status_code=201, summary="A task enters a queue (idempotent with external_ref)")
async def submit(body: TaskCreate, actor: CurrentActor, engine: RoutingEngine) -> Response:
    _agent(actor)
    task, created = await engine.submit(body)
    return FastJSONResponse(task, status_code=201 if created else 200)


@router.post("/tasks/{task_id}/abandon", summary="The patient left while waiting or ringing")
async def abandon(task_id: PathId, actor: CurrentActor, engine: RoutingEngine) -> Response:
    _agent(actor)
    return FastJSONResponse(await engine.abandon(task_id))


@router.post("/tasks/{task_id}/keep-place", summary="The patient hung up and keeps the place (callback)")
async def keep_place(task_id: PathId, actor: CurrentActor, engine: RoutingEngine) -> Response:
    _agent(actor)
    return FastJSONResponse(await engine.keep_place(task_id))


# --- the supervisor --------------------------------------------------------------------------------


@router.get("/live", summary="Queues and agents now, with today's figures and alerts")
async def live(actor: CurrentActor, engine: RoutingEngine) -> Response:
    actor.require(Permission.SUPERVISE)
    return FastJSONResponse(await engine.live())


@router.get("/queues/{queue_id}/waiting", summary="A queue's waiting tasks, next first")
async def waiting(queue_id: PathId, actor: CurrentActor, engine: RoutingEngine) -> Response:
    actor.require(Permission.SUPERVISE)
    return FastJSONResponse(engine.waiting(queue_id))


@router.post("/agents/{user_id}/ready", summary="Force an agent ready")
async def force_ready(user_id: PathId, actor: CurrentActor, engine: RoutingEngine) -> Response:
    actor.require(Permission.SUPERVISE)
    await engine.ready(user_id, by=actor)
    return FastJSONResponse(engine.agent_json(user_id))


@router.post("/agents/{user_id}/not-ready", summary="Force an agent not ready (reason: supervisor)")
async def force_not_ready(user_id: PathId, actor: CurrentActor, engine: RoutingEngine) -> Response:
    actor.require(Permission.SUPERVISE)
    await engine.not_ready(user_id, Reason.SUPERVISOR, by=actor)
    return FastJSONResponse(engine.agent_json(user_id))


@router.post("/agents/{user_id}/logout", summary="Force an agent out (an offer goes back, tasks stay to finish)")
async def force_logout(user_id: PathId, actor: CurrentActor, engine: RoutingEngine) -> Response:
    actor.require(Permission.SUPERVISE)
    await engine.logout(user_id, by=actor)
    return FastJSONResponse(engine.agent_json(user_id))


@router.post("/tasks/{task_id}/move", summary="Move a waiting or ringing task to another queue")
async def move(task_id: PathId, body: QueueTarget, actor: CurrentActor, engine: RoutingEngine) -> Response:
    actor.require(Permission.SUPERVISE)
    return FastJSONResponse(await engine.move(task_id, body.queue_id, by=actor))


@router.post("/tasks/{task_id}/priority", summary="Change a waiting task's priority")
async def set_priority(task_id: PathId, body: PriorityIn, actor: CurrentActor, engine: RoutingEngine) -> Response:
    actor.require(Permission.SUPERVISE)
    return FastJSONResponse(await engine.set_priority(task_id, body.priority, by=actor))


# --- configuration ---------------------------------------------------------------------------------


def _queue_json(row: Any) -> dict[str, Any]:
    return QueueRead.model_validate(row).model_dump(mode="json")


@router.get("/queues", response_model=list[QueueRead], summary="Queues")
async def list_queues(actor: CurrentActor, session: Session) -> Response:
    if not (actor.can(Permission.CONFIGURE_ROUTING) or actor.can(Permission.SUPERVISE)):
        actor.require(Permission.CONFIGURE_ROUTING)
    return FastJSONResponse([_queue_json(row) for row in await service.list_queues(session)])


@router.post("/queues", response_model=QueueRead, status_code=201, summary="Create a queue")
async def create_queue(body: QueueCreate, actor: CurrentActor, session: Session, request: Request) -> Response:
    async with session.begin():
        row = await service.create_queue(session, actor=actor, data=body)
    await _reconfigure(request, "queue", row.id)
    return FastJSONResponse(_queue_json(row), status_code=201)


@router.get("/queues/{queue_id}", response_model=QueueRead, summary="A queue")
async def get_queue(queue_id: PathId, actor: CurrentActor, session: Session) -> Response:
    if not actor.can(Permission.SUPERVISE):
        actor.require(Permission.CONFIGURE_ROUTING)
    return FastJSONResponse(_queue_json(await service.get_queue(session, queue_id=queue_id)))


@router.put("/queues/{queue_id}", response_model=QueueRead, summary="Change a queue (send its version)")
async def update_queue(
    queue_id: PathId, body: QueueUpdate, actor: CurrentActor, session: Session, request: Request
) -> Response:
    async with session.begin():
        row = await service.update_queue(session, actor=actor, queue_id=queue_id, data=body)
    await _reconfigure(request, "queue", queue_id)
    return FastJSONResponse(_queue_json(row))


@router.delete("/queues/{queue_id}", status_code=204, summary="Delete a queue that never held a task")
async def delete_queue(
    queue_id: PathId,
    actor: CurrentActor,
    session: Session,
    request: Request,
    version: Annotated[int, Query(ge=1, le=MAX_ID, description="the version you saw")],
) -> Response:
    async with session.begin():
        await service.delete_queue(session, actor=actor, queue_id=queue_id, version=version)
    await _reconfigure(request, "queue", queue_id)
    return Response(status_code=204)


@router.get("/queues/{queue_id}/members", response_model=list[MemberRead], summary="A queue's members")
async def list_members(queue_id: PathId, actor: CurrentActor, session: Session) -> Response:
    if not actor.can(Permission.SUPERVISE):
        actor.require(Permission.CONFIGURE_ROUTING)
    return FastJSONResponse(await service.list_members(session, queue_id=queue_id))


@router.put("/queues/{queue_id}/members", response_model=list[MemberRead], summary="Set a queue's members and tiers")
async def set_members(
    queue_id: PathId, body: list[MemberIn], actor: CurrentActor, session: Session, request: Request
) -> Response:
    async with session.begin():
        members = await service.set_members(session, actor=actor, queue_id=queue_id, members=body)
    await _reconfigure(request, "profiles")
    return FastJSONResponse(members)


@router.get("/agents/{user_id}/profile", response_model=ProfileRead, summary="An agent's routing profile")
async def get_profile(user_id: PathId, actor: CurrentActor, session: Session) -> Response:
    if not actor.can(Permission.SUPERVISE):
        actor.require(Permission.CONFIGURE_ROUTING)
    profile = await service.get_profile(session, user_id=user_id)
    return FastJSONResponse(ProfileRead.model_validate(profile).model_dump(mode="json"))


@router.put("/agents/{user_id}/profile", response_model=ProfileRead, summary="Set an agent's capacities per channel")
async def set_profile(
    user_id: PathId, body: ProfileIn, actor: CurrentActor, session: Session, request: Request
) -> Response:
    async with session.begin():
        profile = await service.set_profile(session, actor=actor, user_id=user_id, data=body)
    await _reconfigure(request, "profile", user_id)
    return FastJSONResponse(ProfileRead.model_validate(profile).model_dump(mode="json"))
