"""The results sweep: patients waiting for a result have it fetched from the HIS, so a status that turned
final over FHIR notifies them; a HIS that does not answer leaves them waiting."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from patientline.core.auth.actor import SYSTEM
from patientline.core.config import Settings
from patientline.patients import gateway as his_gateway
from patientline.patients import index, sweeps
from patientline.patients.gateway import HisGateway
from patientline.patients.his import HisPatient, ResultStatus
from patientline.patients.models import PatientResult, ResultSubscription
from patientline.patients.simulator import SimulatedHis


async def waiting_patient(db: Any, his: SimulatedHis, n: int) -> int:
    record = HisPatient(
        his_id=f"sim-w{n}", identifiers={"mrn": f"MW{n:04d}"}, name="等结果", phones=[f"+86139008800{n:02d}"]
    )
    his.add_patient(record, results=[ResultStatus(order_number=f"L-W{n}", name="血常规", status="registered")])
    async with db.sessions() as session, session.begin():
        patient = await index.upsert_from_his(session, actor=SYSTEM, record=record)
        session.add(ResultSubscription(patient_id=patient.id, order_number=f"L-W{n}", phone=record.phones[0]))
        return int(patient.id)


async def states(db: Any) -> dict[str, tuple[str | None, str]]:
    async with db.sessions() as session:
        results = {r.order_number: r.status for r in await session.scalars(select(PatientResult))}
        return {
            s.order_number: (results.get(s.order_number), s.status)
            for s in await session.scalars(select(ResultSubscription))
        }


async def test_a_result_turned_final_in_the_his_reaches_the_waiting_patient(db: Any) -> None:
    his = SimulatedHis(seed=21, size=3)
    gateway = HisGateway(his)
    await waiting_patient(db, his, 1)
    await waiting_patient(db, his, 2)

    async with db.sessions() as session, session.begin():
        assert await sweeps.refresh_waiting_results(session, gateway) == 2
    assert await states(db) == {"L-W1": ("registered", "waiting"), "L-W2": ("registered", "waiting")}

    his.set_result_status("sim-w1", "L-W1", "final")
    async with db.sessions() as session, session.begin():
        assert await sweeps.refresh_waiting_results(session, gateway) == 2
    after = await states(db)
    assert (
        after["L-W1"][0] == "final" and after["L-W1"][1] != "waiting"
    )  # notified (sent, or failed without a template)
    assert after["L-W2"] == ("registered", "waiting")

    async with db.sessions() as session, session.begin():
        assert await sweeps.refresh_waiting_results(session, gateway) == 1  # only the one still waiting


async def test_the_sweep_stops_when_the_his_fails_and_uses_the_process_gateway(db: Any, settings: Settings) -> None:
    his = SimulatedHis(seed=22, size=3, failure_rate=1.0)
    gateway = HisGateway(his)
    await waiting_patient(db, his, 3)
    await waiting_patient(db, his, 4)
    async with db.sessions() as session, session.begin():
        assert await sweeps.refresh_waiting_results(session, gateway) == 0
    assert his.calls == 1
    assert await states(db) == {"L-W3": (None, "waiting"), "L-W4": (None, "waiting")}

    his.configure(failure_rate=0.0)
    his.set_result_status("sim-w4", "L-W4", "final")
    gateway.breaker.succeeded()
    previous = his_gateway.current()
    his_gateway.install(gateway)
    try:
        async with db.sessions() as session, session.begin():
            await sweeps.sweep_waiting_results(session, settings)
    finally:
        if previous is not None:
            his_gateway.install(previous)
    assert (await states(db))["L-W4"][0] == "final"
    async with db.sessions() as session, session.begin():
        assert await sweeps.refresh_waiting_results(session, HisGateway(None)) == 0
