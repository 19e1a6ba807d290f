"""The simulated HIS served as FHIR R4 (simulator_fhir) and read back through the FHIR adapter: the
same people, visits, appointments and results as the simulator itself answers; its failures are 503s."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from patientline.patients import fhir
from patientline.patients.fhir import FhirHis
from patientline.patients.his import HisError, HisPatient, ResultStatus
from patientline.patients.simulator import SimulatedHis
from patientline.patients.simulator_fhir import create_fhir_app

BASE = "http://his-simulator.test/fhir"


def adapter_for(his: SimulatedHis, *, token: str | None = None, app_token: str | None = None) -> FhirHis:
    transport = httpx.ASGITransport(app=create_fhir_app(his, token=app_token))
    return FhirHis(BASE, token=token, timeout=5.0, transport=transport)


@pytest.fixture
async def via_fhir(simulated_his: SimulatedHis) -> AsyncIterator[FhirHis]:
    adapter = adapter_for(simulated_his)
    try:
        yield adapter
    finally:
        await adapter.close()


async def test_every_simulated_patient_reads_the_same_through_fhir(
    simulated_his: SimulatedHis, via_fhir: FhirHis
) -> None:
    for person in list(simulated_his.people.values())[:15]:
        record = person.record
        assert await via_fhir.find_patients(kind="mrn", value=record.identifiers["mrn"]) == [record]
        assert await via_fhir.find_patients(kind="id_card", value=record.identifiers["id_card"]) == [record]
        assert await via_fhir.visits(record.his_id) == await simulated_his.visits(record.his_id)
        assert await via_fhir.appointments(record.his_id) == await simulated_his.appointments(record.his_id)
        expected = sorted(await simulated_his.results(record.his_id), key=lambda r: r.order_number)
        assert sorted(await via_fhir.results(record.his_id), key=lambda r: r.order_number) == expected


async def test_a_family_phone_finds_every_member(simulated_his: SimulatedHis, via_fhir: FhirHis) -> None:
    families: dict[int, list[HisPatient]] = {}
    for person in simulated_his.people.values():
        if person.family is not None:
            families.setdefault(person.family, []).append(person.record)
    members = next(iter(families.values()))
    assert len(members) >= 2
    found = await via_fhir.find_patients(phone=members[0].phones[0])
    assert {p.his_id for p in found} == {m.his_id for m in members}
    assert len({p.birth_date for p in found}) == len(members)


async def test_changes_in_the_simulator_show_through_fhir(simulated_his: SimulatedHis, via_fhir: FhirHis) -> None:
    record = HisPatient(
        his_id="sim-test-1", identifiers={"mrn": "MTEST0001"}, name="测试患者", phones=["+8613900990001"]
    )
    simulated_his.add_patient(record, results=[ResultStatus(order_number="L0001", name="血常规")])
    assert await via_fhir.find_patients(phone="+8613900990001") == [record]
    [pending] = await via_fhir.results("sim-test-1")
    assert (pending.status, pending.ready) == ("registered", False)
    simulated_his.set_result_status("sim-test-1", "L0001", "final")
    [ready] = await via_fhir.results("sim-test-1")
    assert ready.ready and ready.issued_at is not None


async def test_pages(simulated_his: SimulatedHis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir, "PAGE_SIZE", 1)
    person = max(simulated_his.people.values(), key=lambda p: len(p.visits))
    assert len(person.visits) >= 3
    adapter = adapter_for(simulated_his)
    try:
        assert await adapter.visits(person.record.his_id) == person.visits
    finally:
        await adapter.close()


async def test_failures_and_the_token(simulated_his: SimulatedHis) -> None:
    simulated_his.configure(failure_rate=1.0)
    adapter = adapter_for(simulated_his)
    try:
        with pytest.raises(HisError, match="HTTP 503: error/transient"):
            await adapter.visits("sim-00001")
    finally:
        await adapter.close()
    simulated_his.configure(failure_rate=0.0)

    refused = adapter_for(simulated_his, app_token="t0ken")
    allowed = adapter_for(simulated_his, token="t0ken", app_token="t0ken")
    try:
        with pytest.raises(HisError, match="HTTP 401"):
            await refused.check()
        await allowed.check()
        assert await allowed.visits("sim-00001") == await simulated_his.visits("sim-00001")
    finally:
        await refused.close()
        await allowed.close()
