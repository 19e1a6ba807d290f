"""Lab and imaging results as the HIS/LIS reports them, and patients' wish to hear when one is ready.

`record_status` is what the HL7 listener (ORU^R01) and the FHIR adapter (DiagnosticReport) call: it keeps
the order's status in `patient_results` and, the first time the status becomes ready (final, corrected…),
publishes `patients.result_available` (ids only) and texts every patient waiting for that order. The text
says that the result is ready, never what it says.

A subscription ("tell me when my result is ready") is one SMS to one number, then `sent`. Other ends:
`cancelled` (by an agent), `opted_out` (the patient had opted out of texts by then: nothing sent),
`suppressed` (the SMS was written but the channels held it back: the number is on the opt-out list or over
the rate limit; `sms_message_id` names the message and its reason), `failed` (the SMS could not be made,
e.g. no active `result_ready` template). Subscribing to a result that is ready already is a 409: the agent
tells the caller at once rather than sending a text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import policy, sms
from patientline.channels.models import SmsStatus
from patientline.core import audit, clock, events
from patientline.core.auth.actor import SYSTEM, Actor
from patientline.core.auth.permissions import Permission
from patientline.core.config import get_settings
from patientline.core.errors import Conflict, InvalidInput, NotFound
from patientline.core.events import Audience
from patientline.core.i18n import N_
from patientline.core.masking import mask_phone
from patientline.patients import access, index
from patientline.patients.his import READY_STATUSES, ResultStatus
from patientline.patients.models import Patient, PatientPhone, PatientResult, ResultSubscription

log = logging.getLogger(__name__)

TEMPLATE = "result_ready"
"""The SMS template of the notice; it may use {kind} (检验 or 检查) and {order_number}."""
KIND_WORDS = {"lab": "检验", "imaging": "检查"}
STATUSES = frozenset(
    {"registered", "partial", "preliminary", "final", "amended", "corrected", "appended", "cancelled",
     "entered-in-error", "unknown"}
)  # fmt: skip
"""FHIR DiagnosticReport.status: what `patient_results.status` holds."""
CLOSED = frozenset({"cancelled", "entered-in-error"})
MAX_CONCLUSION = 4000


class Sub:
    WAITING = "waiting"
    SENT = "sent"
    CANCELLED = "cancelled"
    OPTED_OUT = "opted_out"
    SUPPRESSED = "suppressed"
    FAILED = "failed"


class ResultAvailable(events.Event):
    """A lab or imaging result became ready for the first time (ids only: no names, no content)."""

    type: ClassVar[str] = "patients.result_available"
    patient_id: int
    result_id: int


READERS = Audience(permission=Permission.READ_PATIENTS.value)


# --- from the HIS ---------------------------------------------------------------------------------------


async def record_status(
    session: AsyncSession,
    *,
    patient_id: int,
    status: ResultStatus,
    source: Literal["hl7", "fhir"],
    actor: Actor = SYSTEM,
    keep_content: bool | None = None,
) -> PatientResult:
    rows = await record_statuses(
        session, statuses=[(patient_id, status)], source=source, actor=actor, keep_content=keep_content
    )
    return rows[0]


async def record_statuses(
    session: AsyncSession,
    *,
    statuses: Sequence[tuple[int, ResultStatus]],
    source: Literal["hl7", "fhir"],
    actor: Actor = SYSTEM,
    keep_content: bool | None = None,
) -> list[PatientResult]:
    """Keeps each order's latest status for its patient (a merged record answers as its survivor). A report
    older than the one held (by `issued_at`) changes nothing. `keep_content` (default: the setting
    `results_show_content`) says whether the conclusion is stored at all. Caller owns the transaction."""
    if not statuses:
        return []
    checked = [(await index.resolve(session, patient_id), _checked(status)) for patient_id, status in statuses]
    keys = [(patient.id, status.order_number) for patient, status in checked]
    if len(set(keys)) < len(keys):  # the same order twice: one after the other, as they came
        return [(await record_statuses(session, statuses=[item], source=source, actor=actor,
                                       keep_content=keep_content))[0] for item in statuses]  # fmt: skip
    if keep_content is None:
        keep_content = get_settings().results_show_content
    held = await _held(session, keys)
    rows: list[PatientResult] = []
    changes: list[tuple[Patient, PatientResult, str | None, bool]] = []  # patient, row, status before, was ready
    for (patient, status), key in zip(checked, keys, strict=True):
        row = held.get(key)
        if row is not None and _older(status.issued_at, row.issued_at):
            rows.append(row)
            continue
        if row is None:
            row = PatientResult(patient_id=patient.id, order_number=status.order_number)
            session.add(row)
        changes.append((patient, row, row.status, row.status in READY_STATUSES))
        _take(row, status, source, keep_content)
        rows.append(row)
    await session.flush()
    ready = [(patient, row) for patient, row, _, was_ready in changes if row.status in READY_STATUSES and not was_ready]
    for patient, row, before, _ in changes:
        if before != row.status:
            audit.record(
                session, actor=actor, action="patients.result_status", target_type="patient",
                target_id=patient.id, before={"status": before}, after={"result_id": row.id, "status": row.status},
            )  # fmt: skip
    for patient, row in ready:
        events.record(session, ResultAvailable(patient_id=patient.id, result_id=row.id, audience=READERS))
    await _notify(session, ready)
    return rows


def _checked(status: ResultStatus) -> ResultStatus:
    if status.status not in STATUSES:
        raise InvalidInput(N_("Unknown result status."), details={"status": status.status})
    order_number = status.order_number.strip()
    if not order_number or len(order_number) > 64:
        raise InvalidInput(N_("A result needs an order number of at most 64 characters."))
    return status.model_copy(update={"order_number": order_number})


async def _held(session: AsyncSession, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], PatientResult]:
    rows = await session.scalars(
        select(PatientResult).where(
            PatientResult.patient_id.in_({pid for pid, _ in keys}),
            PatientResult.order_number.in_({order for _, order in keys}),
        )
    )
    return {(row.patient_id, row.order_number): row for row in rows}


def _take(row: PatientResult, status: ResultStatus, source: str, keep_content: bool) -> None:
    row.name = status.name[:200] or row.name
    row.category = status.category
    row.status = status.status
    row.issued_at = status.issued_at or row.issued_at
    row.conclusion = status.conclusion[:MAX_CONCLUSION] if keep_content else ""
    row.source = source


def _older(incoming: datetime | None, held: datetime | None) -> bool:
    return incoming is not None and held is not None and incoming < held


async def _notify(session: AsyncSession, ready: Sequence[tuple[Patient, PatientResult]]) -> None:
    """Texts everyone waiting for these results, now ready."""
    if not ready:
        return
    by_key = {(patient.id, row.order_number): (patient, row) for patient, row in ready}
    waiting = await session.scalars(
        select(ResultSubscription)
        .where(
            ResultSubscription.status == Sub.WAITING,
            ResultSubscription.patient_id.in_({pid for pid, _ in by_key}),
            ResultSubscription.order_number.in_({order for _, order in by_key}),
        )
        .order_by(ResultSubscription.id)
    )
    for subscription in waiting:
        if (found := by_key.get((subscription.patient_id, subscription.order_number))) is not None:
            await _text(session, found[0], found[1], subscription)


async def _text(session: AsyncSession, patient: Patient, result: PatientResult, row: ResultSubscription) -> None:
    row.notified_at = clock.now()
    if not patient.sms_opt_in:
        row.status = Sub.OPTED_OUT
        return
    try:
        message = await sms.send(
            session, phone=row.phone, template=TEMPLATE, patient_id=patient.id,
            variables={"kind": KIND_WORDS.get(result.category, "检验"), "order_number": result.order_number},
            related_type="result_subscription", related_id=row.id, idempotency_key=f"result-ready:{row.id}",
        )  # fmt: skip
    except InvalidInput as exc:
        log.warning("result notice not sent", extra={"subscription_id": row.id, "error_id": exc.error_id})
        row.status = Sub.FAILED
        return
    row.sms_message_id = message.id
    row.status = Sub.SUPPRESSED if message.status == SmsStatus.SUPPRESSED.value else Sub.SENT


# --- agents ---------------------------------------------------------------------------------------------


async def list_results(session: AsyncSession, *, actor: Actor, patient_id: int) -> list[PatientResult]:
    """The statuses held locally, newest first (an audited read)."""
    patient = await access.read(session, actor=actor, patient_id=patient_id, purpose="results")
    rows = await session.scalars(
        select(PatientResult)
        .where(PatientResult.patient_id == patient.id)
        .order_by(PatientResult.issued_at.desc().nulls_last(), PatientResult.id.desc())
    )
    return list(rows)


async def list_subscriptions(session: AsyncSession, *, actor: Actor, patient_id: int) -> list[ResultSubscription]:
    patient = await access.read(session, actor=actor, patient_id=patient_id, purpose="results")
    rows = await session.scalars(
        select(ResultSubscription)
        .where(ResultSubscription.patient_id == patient.id)
        .order_by(ResultSubscription.id.desc())
    )
    return list(rows)


async def subscribe(
    session: AsyncSession, *, actor: Actor, patient_id: int, order_number: str, phone: str | None = None
) -> ResultSubscription:
    """One text to `phone` (default: the patient's first mobile number) when the order's result is ready.
    The same waiting subscription again answers the one that exists."""
    actor.require(Permission.WRITE_PATIENTS)
    patient = await index.resolve(session, patient_id)
    order_number = order_number.strip()
    if not order_number or len(order_number) > 64:
        raise InvalidInput(N_("Give the order number on the slip (at most 64 characters)."),
                           details={"order_number": ["invalid"]})  # fmt: skip
    if not patient.sms_opt_in:
        raise Conflict(
            N_("The patient has opted out of text messages; change their preference first."),
            error_id="sms_opted_out",
        )
    number = policy.mobile_number(phone) if phone else await _first_mobile(session, patient.id)
    result = await session.scalar(
        select(PatientResult).where(PatientResult.patient_id == patient.id, PatientResult.order_number == order_number)
    )
    if result is not None and result.status in READY_STATUSES:
        raise Conflict(N_("This result is ready already: tell the caller now."), error_id="result_ready",
                       details={"result_id": result.id})  # fmt: skip
    if result is not None and result.status in CLOSED:
        raise Conflict(N_("This order was cancelled; there will be no result to announce."),
                       error_id="result_cancelled", details={"result_id": result.id})  # fmt: skip
    existing = await session.scalar(
        select(ResultSubscription).where(
            ResultSubscription.status == Sub.WAITING,
            ResultSubscription.patient_id == patient.id,
            ResultSubscription.order_number == order_number,
            ResultSubscription.phone == number,
        )
    )
    if existing is not None:
        return existing
    row = ResultSubscription(
        patient_id=patient.id, order_number=order_number, phone=number, created_by_id=actor.user_id,
        status=Sub.WAITING,
    )  # fmt: skip
    session.add(row)
    await session.flush()
    audit.record(
        session, actor=actor, action="patients.result_subscribed", target_type="patient", target_id=patient.id,
        after={"subscription_id": row.id, "phone": mask_phone(number)},
    )  # fmt: skip
    return row


async def _first_mobile(session: AsyncSession, patient_id: int) -> str:
    phones = await session.scalars(
        select(PatientPhone.phone).where(PatientPhone.patient_id == patient_id).order_by(PatientPhone.id)
    )
    for candidate in phones:
        try:
            return policy.mobile_number(candidate)
        except InvalidInput:
            continue
    raise InvalidInput(
        N_("The patient has no mobile number on record; give the number to text."), details={"phone": ["required"]}
    )


async def cancel(session: AsyncSession, *, actor: Actor, patient_id: int, subscription_id: int) -> ResultSubscription:
    actor.require(Permission.WRITE_PATIENTS)
    patient = await index.resolve(session, patient_id)
    row = await session.get(ResultSubscription, subscription_id)
    if row is None or row.patient_id != patient.id:
        raise NotFound(N_("There is no such result subscription."), details={"subscription_id": subscription_id})
    if row.status == Sub.CANCELLED:
        return row
    if row.status != Sub.WAITING:
        raise Conflict(N_("The patient was notified already; there is nothing to cancel."),
                       error_id="subscription_done", details={"status": row.status})  # fmt: skip
    row.status = Sub.CANCELLED
    await session.flush()
    audit.record(
        session, actor=actor, action="patients.result_unsubscribed", target_type="patient", target_id=patient.id,
        after={"subscription_id": row.id},
    )  # fmt: skip
    return row
