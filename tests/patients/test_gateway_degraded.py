"""The HIS gateway: live answers kept as snapshots; when the HIS is slow, failing or absent the last
snapshot comes back with its age and a reason, the breaker opens after failures in a row and lets one
trial through later; searches say 503 his_unavailable; nothing raises for HIS trouble."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from patientline.core import clock
from patientline.core.auth.actor import SYSTEM
from patientline.patients import index
from patientline.patients.gateway import NOT_CONNECTED, SLOW, UNAVAILABLE, HisGateway, HisUnavailable
from patientline.patients.his import HisPatient, ResultStatus
from patientline.patients.models import HisSnapshot, Patient, PatientResult
from patientline.patients.simulator import SimulatedHis


def richest(his: SimulatedHis) -> HisPatient:
    """A simulated patient with visits and results."""
    return max(his.people.values(), key=lambda p: (len(p.visits) > 0, len(p.results), len(p.appointments))).record


async def indexed(db: Any, record: HisPatient) -> Patient:
    async with db.sessions() as session, session.begin():
        patient = await index.upsert_from_his(session, actor=SYSTEM, record=record)
        session.expunge(patient)
        return patient


async def overview(db: Any, gateway: HisGateway, patient: Patient) -> Any:
    async with db.sessions() as session, session.begin():
        return await gateway.overview(session, patient)


async def test_live_overview_is_kept_and_shown_with_its_age_when_the_his_fails(db: Any) -> None:
    his = SimulatedHis(seed=11, size=30)
    gateway = HisGateway(his, timeout=5.0, breaker_failures=3, breaker_seconds=60)
    record = richest(his)
    patient = await indexed(db, record)
    person = his.people[record.his_id]

    live = await overview(db, gateway, patient)
    assert live.live and live.problem is None
    assert live.visits.items == person.visits
    assert live.appointments.items == person.appointments
    assert live.results.items == person.results
    assert gateway.status()["state"] == "closed" and gateway.status()["last_latency_ms"] is not None
    async with db.sessions() as session:
        kinds = set(await session.scalars(select(HisSnapshot.kind).where(HisSnapshot.patient_id == patient.id)))
        assert kinds == {"visits", "appointments", "results"}
        held = {r.order_number: r.status for r in await session.scalars(select(PatientResult))}
        assert held == {r.order_number: r.status for r in person.results}  # recorded for subscriptions

    clock.set_now(clock.now() + timedelta(minutes=5))
    his.configure(failure_rate=1.0)
    cached = await overview(db, gateway, patient)
    assert not cached.live and cached.problem == UNAVAILABLE
    assert cached.visits.items == person.visits and cached.results.items == person.results
    assert cached.visits.fetched_at == live.visits.fetched_at
    assert cached.visits.age_seconds is not None and cached.visits.age_seconds >= 300
    assert cached.to_json()["visits"]["live"] is False


async def test_breaker_opens_after_failures_in_a_row_then_lets_one_trial_through(db: Any) -> None:
    his = SimulatedHis(seed=12, size=10, failure_rate=1.0)
    gateway = HisGateway(his, timeout=5.0, breaker_failures=3, breaker_seconds=30)
    patient = await indexed(db, next(iter(his.people.values())).record)

    first = await overview(db, gateway, patient)  # three calls in parallel, three failures
    assert first.problem == UNAVAILABLE and first.visits.fetched_at is None and first.visits.items == []
    status = gateway.status()
    assert (status["state"], status["failures"]) == ("open", 3)
    assert status["last_error"] and status["last_error_at"]

    calls = his.calls
    refused = await overview(db, gateway, patient)
    assert refused.problem == UNAVAILABLE
    assert his.calls == calls  # an open breaker does not wait on the HIS at all
    with pytest.raises(HisUnavailable) as caught:
        await gateway.search(phone="+8613900000000")
    assert caught.value.status_code == 503 and caught.value.error_id == "his_unavailable"

    clock.set_now(clock.now() + timedelta(seconds=31))
    assert gateway.status()["state"] == "half_open"
    trial = await overview(db, gateway, patient)
    assert his.calls == calls + 1  # one trial call; the other two were refused while it ran
    assert not trial.live and gateway.status()["state"] == "open"  # the trial failed: open again

    clock.set_now(clock.now() + timedelta(seconds=31))
    his.configure(failure_rate=0.0)
    assert await gateway.search(kind="mrn", value=patient_mrn(his, patient)) != []  # the trial succeeds
    assert gateway.status()["state"] == "closed" and gateway.status()["failures"] == 0
    assert (await overview(db, gateway, patient)).live


async def test_a_trial_call_given_up_half_way_does_not_leave_the_breaker_shut(db: Any) -> None:
    his = SimulatedHis(seed=12, size=10, failure_rate=1.0)
    gateway = HisGateway(his, timeout=5.0, breaker_failures=1, breaker_seconds=30)
    with pytest.raises(HisUnavailable):
        await gateway.search(phone="+8613900000000")
    assert gateway.status()["state"] == "open"
    clock.set_now(clock.now() + timedelta(seconds=31))
    his.configure(failure_rate=0.0, latency_ms=2_000)
    trial = asyncio.ensure_future(gateway.search(phone="+8613900000000"))
    await asyncio.sleep(0.05)  # the trial call is under way
    trial.cancel()  # the agent closed the page
    with pytest.raises(asyncio.CancelledError):
        await trial
    his.configure(latency_ms=0)
    calls = his.calls
    await gateway.search(phone="+8613900000000")  # the next call is let through as the trial, and it answers
    assert his.calls == calls + 1 and gateway.status()["state"] == "closed"


def patient_mrn(his: SimulatedHis, patient: Patient) -> str:
    assert patient.his_id is not None
    return his.people[patient.his_id].record.identifiers["mrn"]


async def test_a_slow_his_is_cut_off_and_said_to_be_slow(db: Any) -> None:
    his = SimulatedHis(seed=13, size=10, latency_ms=2000)
    gateway = HisGateway(his, timeout=0.05, breaker_failures=5, breaker_seconds=30)
    patient = await indexed(db, next(iter(his.people.values())).record)
    slow = await overview(db, gateway, patient)
    assert not slow.live and slow.problem == SLOW
    assert {slow.visits.problem, slow.appointments.problem, slow.results.problem} == {SLOW}
    assert gateway.status()["failures"] == 3 and gateway.status()["state"] == "closed"
    with pytest.raises(HisUnavailable) as caught:
        await gateway.search(phone="+8613900000000")
    assert caught.value.details == {"reason": "slow"}


async def test_no_his_and_prospective_patients(db: Any) -> None:
    off = HisGateway(None, not_connected_reason="PATIENTLINE_HIS_ADAPTER is off")
    patient = await indexed(db, SimulatedHis(seed=14, size=3).people["sim-00001"].record)
    view = await overview(db, off, patient)
    assert not view.live and view.problem == NOT_CONNECTED and view.results.items == []
    with pytest.raises(HisUnavailable) as caught:
        await off.search(kind="mrn", value="M1")
    assert caught.value.details == {"reason": "not_connected"}
    assert off.status()["adapter"] == "off" and off.status()["connected"] is False
    assert (await off.test_connection())["ok"] is False

    his = SimulatedHis(seed=14, size=3)
    gateway = HisGateway(his)
    async with db.sessions() as session, session.begin():
        prospective = Patient(name="新患者", prospective=True, version=1)
        session.add(prospective)
        await session.flush()
        view = await gateway.overview(session, prospective)
        count = await session.scalar(select(func.count()).select_from(HisSnapshot))
    assert view.live and view.problem is None and view.visits.items == [] and view.results.items == []
    assert his.calls == 0 and count == 0


async def test_search_and_the_connection_test(db: Any) -> None:
    his = SimulatedHis(seed=15, size=20)
    gateway = HisGateway(his, breaker_failures=1, breaker_seconds=600)
    family = next(p for p in his.people.values() if p.family is not None)
    found = await gateway.search(phone=family.record.phones[0])
    assert len(found) >= 2 and family.record in found

    his.configure(failure_rate=1.0)
    assert (await gateway.test_connection())["ok"] is False
    assert gateway.status()["state"] == "open"
    his.configure(failure_rate=0.0)
    tested = await gateway.test_connection()  # goes through an open breaker, and closes it
    assert tested["ok"] is True and tested["state"] == "closed"


async def test_a_result_that_became_ready_is_recorded_from_the_overview(db: Any) -> None:
    his = SimulatedHis(seed=16, size=5)
    record = HisPatient(his_id="sim-r1", identifiers={"mrn": "MR0001"}, name="结果测试", phones=["+8613900880001"])
    his.add_patient(record, results=[ResultStatus(order_number="L-0001", name="肝功能", status="registered")])
    gateway = HisGateway(his)
    patient = await indexed(db, record)
    await overview(db, gateway, patient)
    his.set_result_status("sim-r1", "L-0001", "final")
    view = await overview(db, gateway, patient)
    assert view.results.items[0].ready
    async with db.sessions() as session:
        row = await session.scalar(select(PatientResult).where(PatientResult.patient_id == patient.id))
        assert row is not None and (row.status, row.source) == ("final", "fhir")
