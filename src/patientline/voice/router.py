"""HTTP API of the phone line: IVR flows (list, create, edit the draft with its problems, publish, put an
earlier version back live, delete one never published), recorded prompts, the call log and recordings,
live calls' controls and supervision, calls out, desk phones and the line's self-tests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.core.errors import Conflict
from patientline.core.validation import MAX_ID, Name, PathId
from patientline.voice import call_log, controls, outbound, phones, recorded, selftest, service, trunk
from patientline.voice.calls import PhoneCall
from patientline.voice.controller import VoiceRole
from patientline.voice.flows import FlowDefinition
from patientline.voice.models import IvrFlow, VoicePrompt
from patientline.voice.plant import recordings_dir
from patientline.voice.schemas import (
    CallerIdsRead,
    CallRead,
    ConsultEndIn,
    ConsultIn,
    FlowCreate,
    FlowRead,
    FlowUpdate,
    FlowVersionRead,
    GoLiveIn,
    HoldIn,
    LiveCallRead,
    OutboundIn,
    PhoneSetupRead,
    PromptWords,
    PublishIn,
    RecordedPromptRead,
    RecordedPromptUpdate,
    SelfTestRead,
    SuperviseIn,
    TransferIn,
    TransferTargetsRead,
)
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/voice", tags=["voice"])


async def flow_json(session: AsyncSession, row: IvrFlow) -> dict[str, Any]:
    found = await service.check(session, FlowDefinition.model_validate(row.draft))
    return FlowRead.model_validate(row).model_copy(update={"problems": found}).model_dump(mode="json")


def _configurer(actor: Actor) -> None:
    actor.require(Permission.CONFIGURE_VOICE)


@router.get("/flows", response_model=list[FlowRead], summary="IVR flows")
async def list_flows(actor: CurrentActor, session: Session) -> Response:
    _configurer(actor)
    return FastJSONResponse([await flow_json(session, row) for row in await service.list_flows(session)])


@router.post("/flows", response_model=FlowRead, status_code=201, summary="Add a flow")
async def create_flow(body: FlowCreate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.create_flow(session, actor=actor, data=body)
        return FastJSONResponse(await flow_json(session, row), status_code=201)


@router.get("/flows/{flow_id}", response_model=FlowRead, summary="A flow, its draft and the draft's problems")
async def get_flow(flow_id: PathId, actor: CurrentActor, session: Session) -> Response:
    _configurer(actor)
    return FastJSONResponse(await flow_json(session, await service.get_flow(session, flow_id)))


@router.patch("/flows/{flow_id}", response_model=FlowRead, summary="Rename, renumber, save the draft")
async def update_flow(flow_id: PathId, body: FlowUpdate, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.update_flow(session, actor=actor, flow_id=flow_id, data=body)
        return FastJSONResponse(await flow_json(session, row))


@router.delete("/flows/{flow_id}", status_code=204, summary="Delete a flow never published")
async def delete_flow(
    flow_id: PathId, actor: CurrentActor, session: Session, version: Annotated[int, Query(ge=1, le=MAX_ID)]
) -> Response:
    async with session.begin():
        await service.delete_flow(session, actor=actor, flow_id=flow_id, expected_version=version)
    return Response(status_code=204)


@router.post("/flows/{flow_id}/publish", response_model=FlowVersionRead, status_code=201, summary="Publish the draft")
async def publish(flow_id: PathId, body: PublishIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        version = await service.publish(session, actor=actor, flow_id=flow_id, data=body)
        return FastJSONResponse(FlowVersionRead.model_validate(version).model_dump(mode="json"), status_code=201)


@router.get("/flows/{flow_id}/versions", response_model=list[FlowVersionRead], summary="Published versions")
async def versions(flow_id: PathId, actor: CurrentActor, session: Session) -> Response:
    _configurer(actor)
    rows = await service.versions(session, flow_id)
    return FastJSONResponse([FlowVersionRead.model_validate(row).model_dump(mode="json") for row in rows])


@router.post("/flows/{flow_id}/live", response_model=FlowRead, summary="Put an earlier version back live")
async def go_live(flow_id: PathId, body: GoLiveIn, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        row = await service.go_live(session, actor=actor, flow_id=flow_id, data=body)
        return FastJSONResponse(await flow_json(session, row))


# ---- recorded prompts -------------------------------------------------------------------------------------

WavFile = Annotated[UploadFile, File(description="WAV, at most 8 MB and 5 minutes; converted to 8 kHz mono")]


def prompt_json(row: VoicePrompt, played_by: dict[int, list[str]]) -> dict[str, Any]:
    read = RecordedPromptRead.model_validate(row).model_copy(
        update={"played_by": played_by.get(row.id, []), "audio_url": f"/api/voice/prompts/{row.id}/audio"}
    )
    return read.model_dump(mode="json")


@router.get("/prompts", response_model=list[RecordedPromptRead], summary="Recorded prompts, and the flows playing each")
async def recorded_prompts(actor: CurrentActor, session: Session) -> Response:
    _configurer(actor)
    played_by = await service.uses_of_recordings(session)
    return FastJSONResponse([prompt_json(row, played_by) for row in await recorded.list_prompts(session)])


@router.post("/prompts", response_model=RecordedPromptRead, status_code=201, summary="Upload a recorded prompt")
async def upload_prompt(
    actor: CurrentActor, session: Session, file: WavFile, name: Annotated[Name, Form()],
    words: Annotated[PromptWords, Form()] = "",
) -> Response:  # fmt: skip
    _configurer(actor)
    raw = await file.read(recorded.MAX_BYTES + 1)
    async with session.begin():
        row = await recorded.upload(session, actor=actor, name=name, words=words, filename=file.filename or "", raw=raw)
        return FastJSONResponse(prompt_json(row, {}), status_code=201)


@router.patch("/prompts/{prompt_id}", response_model=RecordedPromptRead, summary="Rename a prompt, or its words")
async def update_prompt(
    prompt_id: PathId, body: RecordedPromptUpdate, actor: CurrentActor, session: Session
) -> Response:
    async with session.begin():
        row = await recorded.update(session, actor=actor, prompt_id=prompt_id, data=body)
        return FastJSONResponse(prompt_json(row, await service.uses_of_recordings(session)))


@router.get("/prompts/{prompt_id}/audio", summary="Hear a recorded prompt (8 kHz WAV)")
async def prompt_audio(prompt_id: PathId, actor: CurrentActor, session: Session) -> Response:
    audio = await recorded.audio(session, actor=actor, prompt_id=prompt_id)
    return Response(audio, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.put("/prompts/{prompt_id}/audio", response_model=RecordedPromptRead,
            summary="Replace the recording (the flows playing it play the new one)")  # fmt: skip
async def replace_prompt_audio(
    prompt_id: PathId, actor: CurrentActor, session: Session, file: WavFile,
    version: Annotated[int, Form(ge=1, le=MAX_ID)],
) -> Response:  # fmt: skip
    _configurer(actor)
    raw = await file.read(recorded.MAX_BYTES + 1)
    async with session.begin():
        row = await recorded.replace_audio(session, actor=actor, prompt_id=prompt_id, expected_version=version,
                                           filename=file.filename or "", raw=raw)  # fmt: skip
        return FastJSONResponse(prompt_json(row, await service.uses_of_recordings(session)))


@router.delete("/prompts/{prompt_id}", status_code=204, summary="Delete a recorded prompt no flow plays")
async def delete_prompt(
    prompt_id: PathId, actor: CurrentActor, session: Session, version: Annotated[int, Query(ge=1, le=MAX_ID)]
) -> Response:
    async with session.begin():
        await recorded.delete(session, actor=actor, prompt_id=prompt_id, expected_version=version)
    return Response(status_code=204)


@router.get("/calls", response_model=list[CallRead], summary="The call log, newest first (an agent: their own calls)")
async def calls(actor: CurrentActor, session: Session, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
    return FastJSONResponse(await call_log.list_calls(session, actor=actor, limit=limit))


@router.get("/calls/{call_id}/recording", summary="Hear a call's recording (WAV; audited)")
async def recording(call_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    directory = recordings_dir(app_state(request).settings)
    async with session.begin():
        path = await call_log.recording_path(session, actor=actor, call_id=call_id, directory=directory)
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"})


# ---- live calls: the agent bar's controls and supervision ------------------------------------------------

LiveId = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]


def _voice(request: Request) -> VoiceRole:
    voice = app_state(request).voice
    if voice is None:
        raise Conflict("The phone line does not run in this server.", error_id="voice_off")
    return voice


def _live_calls(request: Request) -> list[PhoneCall]:
    return list(_voice(request).controller.calls.values())


def _live(request: Request, actor: Actor, live_id: str) -> PhoneCall:
    return controls.find(_live_calls(request), actor, live_id)


@router.get("/live", response_model=list[LiveCallRead], summary="Calls on the line now (an agent: their own)")
async def live_calls(request: Request, actor: CurrentActor) -> Response:
    return FastJSONResponse(controls.visible(_live_calls(request), actor))


@router.post("/live/{live_id}/hold", response_model=LiveCallRead, summary="Hold the caller (music) or resume")
async def hold(live_id: LiveId, body: HoldIn, request: Request, actor: CurrentActor) -> Response:
    call = _live(request, actor, live_id)
    await controls.hold(call, body.on)
    return FastJSONResponse(controls.live_json(call))


@router.post("/live/{live_id}/hangup", response_model=LiveCallRead, summary="Hang up (a supervisor: any call)")
async def hang_up(live_id: LiveId, request: Request, actor: CurrentActor, session: Session) -> Response:
    call = _live(request, actor, live_id)
    await controls.hang_up(call, actor)
    if call.agent_id != actor.user_id:
        async with session.begin():
            controls.audit_supervision(session, actor, call, "hang_up")
    return FastJSONResponse(controls.live_json(call))


@router.get("/transfer-targets", response_model=TransferTargetsRead,
            summary="Where a call can be passed: queues, departments' seats, expert centres, colleagues")  # fmt: skip
async def transfer_targets(request: Request, actor: CurrentActor, session: Session) -> Response:
    shown = await controls.transfer_targets(session, _voice(request).controller.plant, actor)
    return FastJSONResponse(shown.model_dump(mode="json"))


@router.post("/live/{live_id}/transfer", response_model=LiveCallRead,
             summary="Blind transfer to a queue, a colleague or an outside number")  # fmt: skip
async def transfer(live_id: LiveId, body: TransferIn, request: Request, actor: CurrentActor) -> Response:
    call = _live(request, actor, live_id)
    await controls.transfer(call, body)
    return FastJSONResponse(controls.live_json(call))


@router.post("/live/{live_id}/consult", response_model=LiveCallRead, summary="Hold the caller and call someone")
async def consult(live_id: LiveId, body: ConsultIn, request: Request, actor: CurrentActor) -> Response:
    call = _live(request, actor, live_id)
    await controls.consult(call, body.target)
    return FastJSONResponse(controls.live_json(call))


@router.post("/live/{live_id}/consult/end", response_model=LiveCallRead,
             summary="Hand the caller over, join all three, or cancel the consultation")  # fmt: skip
async def end_consult(live_id: LiveId, body: ConsultEndIn, request: Request, actor: CurrentActor) -> Response:
    call = _live(request, actor, live_id)
    await controls.end_consult(call, body.how)
    return FastJSONResponse(controls.live_json(call))


@router.post("/live/{live_id}/supervise", response_model=LiveCallRead,
             summary="Listen, whisper, barge in, take over, or leave (audited)")  # fmt: skip
async def supervise(live_id: LiveId, body: SuperviseIn, request: Request, actor: CurrentActor,
                    session: Session) -> Response:  # fmt: skip
    call = _live(request, actor, live_id)
    await controls.supervise(call, actor, body.mode)
    async with session.begin():
        controls.audit_supervision(session, actor, call, body.mode)
    return FastJSONResponse(controls.live_json(call))


# ---- outbound calls ----------------------------------------------------------------------------------------


@router.get("/outbound/caller-ids", response_model=CallerIdsRead, summary="The numbers an agent may show")
async def outbound_caller_ids(request: Request, actor: CurrentActor) -> Response:
    actor.require(Permission.HANDLE_CONTACTS)
    _voice(request)
    settings = app_state(request).settings
    return FastJSONResponse({"caller_ids": trunk.caller_ids(settings), "trunk": bool(settings.voice_trunk.strip())})


@router.post("/outbound", response_model=LiveCallRead, status_code=201,
             summary="Call out: the agent's phone first, then the patient (audited)")  # fmt: skip
async def dial_out(body: OutboundIn, request: Request, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.HANDLE_CONTACTS)
    voice = _voice(request)
    async with session.begin():
        dialling = await outbound.check(session, app_state(request).settings, actor, body)
    call = await voice.controller.dial_out(dialling, actor)
    async with session.begin():
        outbound.audit_dialling(session, actor, dialling, call.live_id)
    return FastJSONResponse(controls.live_json(call), status_code=201)


# ---- desk phones' passwords ---------------------------------------------------------------------------------


@router.get("/phones/{user_id}", response_model=PhoneSetupRead, summary="How a desk phone registers (own, or an admin)")
async def phone_setup(user_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    phones.require_own_or_admin(actor, user_id)
    shown = await phones.setup(session, app_state(request).settings, user_id)
    return FastJSONResponse(shown.model_dump(mode="json"))


@router.post("/phones/{user_id}/password", response_model=PhoneSetupRead, status_code=201,
             summary="A new desk-phone password, shown once (audited)")  # fmt: skip
async def new_phone_password(user_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        shown = await phones.set_password(session, app_state(request).settings, actor, user_id)
    return FastJSONResponse(shown.model_dump(mode="json"), status_code=201)


@router.delete("/phones/{user_id}/password", status_code=204, summary="Revoke a desk phone's password (audited)")
async def revoke_phone_password(user_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        await phones.revoke(session, actor, user_id)
    return Response(status_code=204)


# ---- the line's self-test ----------------------------------------------------------------------------------


@router.get("/self-tests", response_model=list[SelfTestRead], summary="The line's latest test calls, newest first")
async def self_tests(actor: CurrentActor, session: Session,
                     limit: Annotated[int, Query(ge=1, le=500)] = 20) -> Response:  # fmt: skip
    actor.require(Permission.SUPERVISE)
    return FastJSONResponse([test.model_dump(mode="json") for test in await selftest.recent(session, limit)])


@router.post("/self-tests", response_model=SelfTestRead, status_code=201, summary="Call the line now to test it")
async def run_self_test(request: Request, actor: CurrentActor) -> Response:
    actor.require(Permission.SUPERVISE)
    result = await _voice(request).tester.run()
    return FastJSONResponse(selftest.shown(result).model_dump(mode="json"), status_code=201)
