"""The worker's side of the patients domain: patients waiting for a result ("tell me when it is ready")
have their result statuses fetched from the HIS every minute, so a status that became final over FHIR
(without an HL7 ORU^R01) still sends their text; and the HL7 messages accepted longer ago than
`hl7_retention_days` are forgotten (their rows only serve to answer a resend the same)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.config import Settings
from patientline.core.jobs import sweeper
from patientline.patients import gateway as his_gateway
from patientline.patients.models import HisSnapshot, Hl7Message, Patient, ResultSubscription

log = logging.getLogger(__name__)

RESULTS_BATCH = 200  # patients a sweep asks about; the HIS answers each in ~100 ms, the breaker stops a dead one


async def refresh_waiting_results(
    session: AsyncSession, gateway: his_gateway.HisGateway, *, limit: int = RESULTS_BATCH
) -> int:
    """Asks the HIS for the results of patients with a waiting subscription (those asked about longest
    ago first, by their snapshot's age) and records them; returns how many patients were answered live.
    Stops early when the HIS fails (the breaker would refuse the rest anyway)."""
    if gateway.his is None:
        return 0
    waiting = select(ResultSubscription.patient_id).where(ResultSubscription.status == "waiting").distinct()
    patients = await session.scalars(
        select(Patient)
        .outerjoin(HisSnapshot, and_(HisSnapshot.patient_id == Patient.id, HisSnapshot.kind == "results"))
        .where(Patient.id.in_(waiting), Patient.his_id.is_not(None), Patient.merged_into_id.is_(None))
        .order_by(HisSnapshot.fetched_at.is_not(None), HisSnapshot.fetched_at, Patient.id)
        .limit(limit)
    )
    answered = 0
    for patient in list(patients):
        view = await gateway.refresh_results(session, patient)
        if not view.live:
            log.info("result sweep stopped: the HIS is not answering", extra={"answered": answered})
            break
        answered += 1
    return answered


@sweeper("patients.his_results", every_seconds=60)
async def sweep_waiting_results(session: AsyncSession, settings: Settings) -> None:
    gateway = his_gateway.current()
    if gateway is not None:
        await refresh_waiting_results(session, gateway)


@sweeper("patients.hl7_retention", every_seconds=3600)
async def forget_old_hl7_messages(session: AsyncSession, settings: Settings) -> None:
    cutoff = clock.now() - timedelta(days=settings.hl7_retention_days)
    await session.execute(delete(Hl7Message).where(Hl7Message.received_at < cutoff))
