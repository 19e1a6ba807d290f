"""The FHIR R4 adapter against an independent FHIR server (sekmet-fhir on 127.0.0.1): resources stored
there with plain HTTP are found and read back through `FhirHis`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest

from patientline.patients.fhir import IDENTIFIER_SYSTEMS, FhirHis
from patientline.patients.his import HisError
from patientline.patients.simulator import id_card_number

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def his(sekmet_url: str) -> AsyncIterator[FhirHis]:
    adapter = FhirHis(sekmet_url, timeout=5.0)
    try:
        yield adapter
    finally:
        await adapter.close()


def unique_mobile() -> str:
    return f"+8613900{uuid.uuid4().int % 1_000_000:06d}"


def store_patient(fhir_post: Any, *, mrn: str, phone: str, name: tuple[str, str] = ("王", "小明"),
                  birth: str = "1980-02-03", id_card: str | None = None) -> str:  # fmt: skip
    identifiers = [
        {"system": IDENTIFIER_SYSTEMS["mrn"], "value": mrn},
        {"system": "urn:oid:9.9.9", "value": "OTHER-1"},  # a system we do not know: not kept
    ]
    if id_card:
        identifiers.append({"system": IDENTIFIER_SYSTEMS["id_card"], "value": id_card})
    return fhir_post(
        {
            "resourceType": "Patient",
            "identifier": identifiers,
            "name": [{"use": "official", "family": name[0], "given": [name[1]]}],
            "gender": "male",
            "birthDate": birth,
            "telecom": [
                {"system": "phone", "value": phone, "use": "mobile"},
                {"system": "email", "value": "someone@example.org"},
                {"system": "phone", "value": "not a number"},
            ],
        }
    )


async def test_patient_by_identifier_and_by_phone(his: FhirHis, fhir_post: Any) -> None:
    mrn, phone = f"M{uuid.uuid4().hex[:10].upper()}", unique_mobile()
    id_card = id_card_number("110105", date(1980, 2, 3), 7, male=True)
    his_id = store_patient(fhir_post, mrn=mrn, phone=phone, id_card=id_card)

    [found] = await his.find_patients(kind="mrn", value=mrn)
    assert found.his_id == his_id
    assert found.name == "王小明"
    assert found.sex == "male"
    assert found.birth_date == date(1980, 2, 3)
    assert found.identifiers == {"mrn": mrn, "id_card": id_card}
    assert found.phones == [phone]

    assert [p.his_id for p in await his.find_patients(kind="id_card", value=id_card)] == [his_id]
    assert [p.his_id for p in await his.find_patients(phone=phone)] == [his_id]
    assert await his.find_patients(kind="mrn", value="M-NOBODY-HERE") == []


async def test_a_family_sharing_a_phone_is_every_member(his: FhirHis, fhir_post: Any) -> None:
    phone = unique_mobile()
    parent = store_patient(fhir_post, mrn=f"M{uuid.uuid4().hex[:8]}", phone=phone, name=("李", "建国"))
    child = store_patient(fhir_post, mrn=f"M{uuid.uuid4().hex[:8]}", phone=phone, name=("李", "子涵"),
                          birth="2015-06-01")  # fmt: skip
    found = await his.find_patients(phone=phone)
    assert {p.his_id for p in found} == {parent, child}
    assert {p.name for p in found} == {"李建国", "李子涵"}


async def test_visits_appointments_and_results(his: FhirHis, fhir_post: Any) -> None:
    his_id = store_patient(fhir_post, mrn=f"M{uuid.uuid4().hex[:8]}", phone=unique_mobile())
    subject = {"reference": f"Patient/{his_id}"}
    for month, code in ((1, "AMB"), (3, "IMP"), (5, "EMER")):
        fhir_post({
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code},
            "subject": subject, "period": {"start": f"2026-0{month}-02T08:30:00+08:00"},
            "serviceType": {"text": "心内科"}, "participant": [{"individual": {"display": "周立平"}}],
        })  # fmt: skip
    fhir_post({
        "resourceType": "Appointment", "status": "booked", "start": "2026-12-01T09:00:00+08:00",
        "end": "2026-12-01T09:15:00+08:00", "serviceType": [{"text": "呼吸内科"}],
        "participant": [{"actor": subject, "status": "accepted"},
                        {"actor": {"reference": "Practitioner/doc-1", "display": "吴晓岚"}, "status": "accepted"}],
    })  # fmt: skip
    fhir_post({
        "resourceType": "DiagnosticReport", "status": "final", "subject": subject,
        "identifier": [{"value": "L2611010001"}], "code": {"text": "血常规"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "HM"}]}],
        "issued": "2026-11-01T10:00:00+08:00", "conclusion": "各项指标在参考范围内",
    })  # fmt: skip
    fhir_post({
        "resourceType": "DiagnosticReport", "status": "registered", "subject": subject,
        "identifier": [{"value": "R2611020001"}], "code": {"text": "胸部 CT 平扫"},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
    })  # fmt: skip

    visits = await his.visits(his_id)
    assert [v.kind for v in visits] == ["emergency", "inpatient", "outpatient"]  # most recent first
    assert visits[0].department == "心内科" and visits[0].doctor == "周立平" and visits[0].status == "finished"
    assert visits[-1].start == datetime.fromisoformat("2026-01-02T08:30:00+08:00")

    [appointment] = await his.appointments(his_id)
    assert (appointment.department, appointment.doctor, appointment.status) == ("呼吸内科", "吴晓岚", "booked")
    assert appointment.start == datetime.fromisoformat("2026-12-01T09:00:00+08:00")

    results = {r.order_number: r for r in await his.results(his_id)}
    assert set(results) == {"L2611010001", "R2611020001"}
    lab, imaging = results["L2611010001"], results["R2611020001"]
    assert (lab.category, lab.status, lab.name, lab.ready) == ("lab", "final", "血常规", True)
    assert lab.issued_at == datetime.fromisoformat("2026-11-01T10:00:00+08:00")
    assert lab.conclusion == "各项指标在参考范围内"
    assert (imaging.category, imaging.status, imaging.ready) == ("imaging", "registered", False)
    assert imaging.issued_at is None


async def test_bundle_pages_are_followed(sekmet_url: str, fhir_post: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from patientline.patients import fhir

    monkeypatch.setattr(fhir, "PAGE_SIZE", 2)
    his_id = store_patient(fhir_post, mrn=f"M{uuid.uuid4().hex[:8]}", phone=unique_mobile())
    for day in range(1, 6):
        fhir_post({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                   "subject": {"reference": f"Patient/{his_id}"}, "period": {"start": f"2026-02-0{day}"}})  # fmt: skip
    adapter = FhirHis(sekmet_url, timeout=5.0)
    try:
        visits = await adapter.visits(his_id)
    finally:
        await adapter.close()
    assert len(visits) == 5  # three pages of two
    assert visits[0].start is not None and visits[0].start.date() == date(2026, 2, 5)


async def test_no_patient_is_an_empty_answer_and_a_bad_id_an_error(his: FhirHis) -> None:
    assert await his.visits("no-such-patient") == []
    with pytest.raises(HisError):
        await his.visits("Patient/1&_count=1000")  # not a FHIR id: never put into the query
    with pytest.raises(HisError):
        await his.find_patients()


async def test_connection_check(his: FhirHis) -> None:
    await his.check()
