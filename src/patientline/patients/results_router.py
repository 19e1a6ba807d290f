"""HTTP API: a patient's lab and imaging result statuses (content only where the centre allows it) and
"tell me by SMS when my result is ready" subscriptions. Every read is audited through `patients.access`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from pydantic import StringConstraints

from patientline.core.auth.permissions import Permission
from patientline.core.masking import mask_phone
from patientline.core.validation import PathId, ReadModel, StrictModel
from patientline.patients import results
from patientline.patients.his import READY_STATUSES
from patientline.patients.models import PatientResult, ResultSubscription
from patientline.web.deps import CurrentActor, Session, app_state
from patientline.web.responses import FastJSONResponse

router = APIRouter(prefix="/api/patients", tags=["patient results"])


class ResultRead(ReadModel):
    id: int
    order_number: str
    name: str
    category: str  # lab, imaging
    status: str  # FHIR DiagnosticReport.status: registered, preliminary, final, corrected, cancelled…
    ready: bool
    issued_at: datetime | None
    conclusion: str | None  # null unless the centre shows result content (results_show_content)
    source: str  # hl7, fhir
    updated_at: datetime


class SubscriptionRead(ReadModel):
    id: int
    order_number: str
    phone_masked: str
    status: str  # waiting, sent, cancelled, opted_out, suppressed, failed
    created_at: datetime
    notified_at: datetime | None
    sms_message_id: int | None


class SubscriptionIn(StrictModel):
    order_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    phone: Annotated[str | None, StringConstraints(strip_whitespace=True, max_length=32)] = None


def _result(row: PatientResult, show_content: bool) -> ResultRead:
    return ResultRead(
        id=row.id, order_number=row.order_number, name=row.name, category=row.category, status=row.status,
        ready=row.status in READY_STATUSES, issued_at=row.issued_at,
        conclusion=row.conclusion if show_content else None, source=row.source, updated_at=row.updated_at,
    )  # fmt: skip


def _subscription(row: ResultSubscription) -> SubscriptionRead:
    return SubscriptionRead(
        id=row.id, order_number=row.order_number, phone_masked=mask_phone(row.phone), status=row.status,
        created_at=row.created_at, notified_at=row.notified_at, sms_message_id=row.sms_message_id,
    )  # fmt: skip


@router.get("/{patient_id}/results", response_model=list[ResultRead], summary="A patient's result statuses")
async def list_results(patient_id: PathId, request: Request, actor: CurrentActor, session: Session) -> Response:
    show = app_state(request).settings.results_show_content
    async with session.begin():
        rows = await results.list_results(session, actor=actor, patient_id=patient_id)
        body = [_result(r, show).model_dump(mode="json") for r in rows]
    return FastJSONResponse(body)


@router.get(
    "/{patient_id}/result-subscriptions", response_model=list[SubscriptionRead], summary="Result SMS subscriptions"
)
async def list_subscriptions(patient_id: PathId, actor: CurrentActor, session: Session) -> Response:
    async with session.begin():
        rows = await results.list_subscriptions(session, actor=actor, patient_id=patient_id)
        body = [_subscription(r).model_dump(mode="json") for r in rows]
    return FastJSONResponse(body)


@router.post(
    "/{patient_id}/result-subscriptions",
    status_code=201,
    response_model=SubscriptionRead,
    summary="Text the patient when a result is ready (409 when it is ready already)",
)
async def subscribe(patient_id: PathId, body: SubscriptionIn, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.WRITE_PATIENTS)
    async with session.begin():
        row = await results.subscribe(
            session, actor=actor, patient_id=patient_id, order_number=body.order_number, phone=body.phone or None
        )
        out = _subscription(row).model_dump(mode="json")
    return FastJSONResponse(out, status_code=201)


@router.delete(
    "/{patient_id}/result-subscriptions/{subscription_id}",
    response_model=SubscriptionRead,
    summary="Cancel a waiting subscription",
)
async def cancel(patient_id: PathId, subscription_id: PathId, actor: CurrentActor, session: Session) -> Response:
    actor.require(Permission.WRITE_PATIENTS)
    async with session.begin():
        row = await results.cancel(session, actor=actor, patient_id=patient_id, subscription_id=subscription_id)
        out = _subscription(row).model_dump(mode="json")
    return FastJSONResponse(out)
