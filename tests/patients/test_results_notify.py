"""Results: statuses from HL7/FHIR, "text me when it is ready" subscriptions and the SMS they send (rows in
the channels' outbox), through the API and the service; reads are audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hl7_build import adt, oru
from sqlalchemy import func, select

from helpers import Client, assert_error
from patientline.channels.demo import load_demo_channels
from patientline.channels.models import SmsMessage, SmsOptOut
from patientline.core.audit import AuditEntry
from patientline.core.config import Settings
from patientline.core.events import EventLogEntry
from patientline.patients import index, results
from patientline.patients.his import ResultStatus
from patientline.patients.hl7 import Hl7Inbox
from patientline.patients.models import Patient, PatientResult, ResultSubscription
from patientline.web.app import create_app


@pytest.fixture
async def inbox(db: Any, settings: Settings) -> Hl7Inbox:
    async with db.sessions() as session, session.begin():
        await load_demo_channels(session)
    return Hl7Inbox(db, settings)


@pytest.fixture
async def agent(as_user: Any) -> AsyncIterator[Client]:
    async with as_user("agent1", ["agent"]) as client:
        yield client


async def admit(inbox: Hl7Inbox, db: Any, mrn: str = "M001", phones: str = "13800138000") -> int:
    answer = await inbox.receive(adt("A01", f"ADM-{mrn}", pid3=f"{mrn}^^^HIS^MR", phones=phones).encode())
    assert answer.code == "AA", answer.ack
    async with db.sessions() as session:
        patient = await index.find_by_identifier(session, "mrn", mrn)
    assert patient is not None
    return patient.id


async def report(inbox: Hl7Inbox, status: str, control: str, order: str = "LAB-1001", **kwargs: Any) -> None:
    answer = await inbox.receive(oru(control, order=order, status=status, **kwargs).encode())
    assert answer.code == "AA", answer.ack


async def rows(db: Any, model: Any, *where: Any) -> list[Any]:
    async with db.sessions() as session:
        return list(await session.scalars(select(model).where(*where).order_by(model.id)))


async def test_subscribe_then_oru_final_texts_the_patient_once(inbox: Hl7Inbox, agent: Client, db: Any) -> None:
    patient_id = await admit(inbox, db)
    await report(inbox, "P", "R1")
    response = await agent.post(f"/api/patients/{patient_id}/result-subscriptions", json={"order_number": "LAB-1001"})
    assert response.status_code == 201, response.text
    subscription = response.json()
    assert subscription["status"] == "waiting" and subscription["phone_masked"] == "138****8000"
    again = await agent.post(f"/api/patients/{patient_id}/result-subscriptions", json={"order_number": "LAB-1001"})
    assert again.json()["id"] == subscription["id"]  # the same wish twice is one subscription
    assert await rows(db, SmsMessage) == []
    await report(inbox, "F", "R2", issued="20261123110000+0800")
    (sms,) = await rows(db, SmsMessage)
    assert (sms.template_code, sms.phone, sms.patient_id) == ("result_ready", "+8613800138000", patient_id)
    assert (sms.related_type, sms.related_id) == ("result_subscription", subscription["id"])
    assert "LAB-1001" in sms.text and "血红蛋白" not in sms.text and "血常规" not in sms.text  # never the content
    assert sms.status in ("queued", "held")
    (row,) = await rows(db, ResultSubscription)
    assert (row.status, row.sms_message_id) == ("sent", sms.id) and row.notified_at is not None
    await report(inbox, "C", "R3", issued="20261123120000+0800")  # a correction is not a second "ready"
    assert len(await rows(db, SmsMessage)) == 1
    events = await rows(db, EventLogEntry, EventLogEntry.type == "patients.result_available")
    result_id = (await rows(db, PatientResult))[0].id
    assert [e.payload for e in events] == [{"patient_id": patient_id, "result_id": result_id}]
    listed = await agent.get(f"/api/patients/{patient_id}/result-subscriptions")
    assert [(s["id"], s["status"], s["sms_message_id"]) for s in listed.json()] == [
        (subscription["id"], "sent", sms.id)
    ]


async def test_results_list_shows_status_not_content(inbox: Hl7Inbox, agent: Client, db: Any) -> None:
    patient_id = await admit(inbox, db)
    await report(inbox, "F", "R1", order="LIS-9", name="肝功能", section="")
    await report(inbox, "I", "R2", order="RIS-9", name="胸部CT", section="")
    response = await agent.get(f"/api/patients/{patient_id}/results")
    assert response.status_code == 200
    body = {r["order_number"]: r for r in response.json()}
    assert (body["LIS-9"]["status"], body["LIS-9"]["ready"], body["LIS-9"]["category"]) == ("final", True, "lab")
    assert (body["RIS-9"]["status"], body["RIS-9"]["ready"], body["RIS-9"]["category"]) == ("registered", False,
                                                                                              "imaging")  # fmt: skip
    assert body["LIS-9"]["conclusion"] is None
    reads = await rows(db, AuditEntry, AuditEntry.action == "patients.read", AuditEntry.actor_name == "agent1")
    assert [(r.target_id, r.reason) for r in reads] == [(str(patient_id), "results")]


async def test_results_content_when_the_centre_shows_it(settings: Settings, make_user: Any) -> None:
    application = create_app(settings.model_copy(update={"results_show_content": True}))
    async with application.router.lifespan_context(application):
        db = application.state.pl.db
        inbox = Hl7Inbox(db, application.state.pl.settings)
        patient_id = await admit(inbox, db)
        await report(inbox, "F", "R1")
        await make_user("agent2", ["agent"])
        transport = httpx.ASGITransport(app=application, client=("10.9.8.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            client = Client(http)
            assert (await client.login("agent2")).status_code == 200
            (result,) = (await client.get(f"/api/patients/{patient_id}/results")).json()
    assert result["conclusion"] == "血红蛋白: 135 g/L [N]\n白细胞: 11.2 10*9/L [H]"


async def test_subscribe_refusals(inbox: Hl7Inbox, agent: Client, db: Any) -> None:
    patient_id = await admit(inbox, db)
    url = f"/api/patients/{patient_id}/result-subscriptions"
    await report(inbox, "F", "R1", order="DONE-1")
    assert_error(await agent.post(url, json={"order_number": "DONE-1"}), 409, "result_ready")
    await report(inbox, "X", "R2", order="GONE-1")
    assert_error(await agent.post(url, json={"order_number": "GONE-1"}), 409, "result_cancelled")
    assert_error(await agent.post(url, json={"order_number": ""}), 422)
    assert_error(await agent.post(url, json={"order_number": "A" * 65}), 422)
    assert_error(await agent.post(url, json={"order_number": "N-1", "phone": "12345"}), 422)
    assert_error(await agent.post(url, json={"order_number": "N-1", "phone": "010-6555 0000"}), 422)  # no SMS
    assert_error(await agent.post(url, json={"order_number": "N-1", "extra": 1}), 422)
    assert_error(await agent.post("/api/patients/999999/result-subscriptions", json={"order_number": "N-1"}), 404)
    landline_only = await admit(inbox, db, mrn="M002", phones="^PRN^PH^^86^10^65550000")
    body = assert_error(await agent.post(f"/api/patients/{landline_only}/result-subscriptions",
                                         json={"order_number": "N-1"}), 422)  # fmt: skip
    assert "mobile" in body["message"] or body["details"] == {"phone": ["required"]}
    ok = await agent.post(f"/api/patients/{landline_only}/result-subscriptions",
                          json={"order_number": "N-1", "phone": "139 1111 2222"})  # fmt: skip
    assert ok.status_code == 201 and ok.json()["phone_masked"] == "139****2222"
    async with db.sessions() as session, session.begin():
        patient = await session.get(Patient, patient_id)
        assert patient is not None
        patient.sms_opt_in = False
    assert_error(await agent.post(url, json={"order_number": "N-2"}), 409, "sms_opted_out")
    assert len(await rows(db, ResultSubscription)) == 1


async def test_cancel_a_subscription(inbox: Hl7Inbox, agent: Client, db: Any) -> None:
    patient_id = await admit(inbox, db)
    other_id = await admit(inbox, db, mrn="M002", phones="13900001111")
    url = f"/api/patients/{patient_id}/result-subscriptions"
    created = (await agent.post(url, json={"order_number": "LAB-1001"})).json()
    assert_error(await agent.delete(f"/api/patients/{other_id}/result-subscriptions/{created['id']}"), 404)
    cancelled = await agent.delete(f"{url}/{created['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    await report(inbox, "F", "R1")
    assert await rows(db, SmsMessage) == []  # nobody was waiting any more
    second = (await agent.post(url, json={"order_number": "LAB-2002"})).json()
    await report(inbox, "F", "R2", order="LAB-2002")
    assert_error(await agent.delete(f"{url}/{second['id']}"), 409, "subscription_done")
    assert_error(await agent.delete(f"{url}/999999"), 404)
    audit = await rows(db, AuditEntry, AuditEntry.action.startswith("patients.result_"))
    assert [a.action for a in audit if a.actor_name == "agent1"] == ["patients.result_subscribed",
                                                                      "patients.result_unsubscribed",
                                                                      "patients.result_subscribed"]  # fmt: skip


async def test_opted_out_suppressed_and_failed_notices_say_why(inbox: Hl7Inbox, agent: Client, db: Any) -> None:
    opted_out = await admit(inbox, db, mrn="M010", phones="13800000010")
    blocked = await admit(inbox, db, mrn="M011", phones="13800000011")
    for patient_id in (opted_out, blocked):
        response = await agent.post(f"/api/patients/{patient_id}/result-subscriptions", json={"order_number": "O-1"})
        assert response.status_code == 201
    async with db.sessions() as session, session.begin():
        patient = await session.get(Patient, opted_out)
        assert patient is not None
        patient.sms_opt_in = False
        session.add(SmsOptOut(phone="+8613800000011", source="sms", reason="STOP"))
    async with db.sessions() as session, session.begin():
        for patient_id in (opted_out, blocked):
            await results.record_status(session, patient_id=patient_id, source="fhir",
                                        status=ResultStatus(order_number="O-1", status="final"))  # fmt: skip
    subscriptions = {r.patient_id: r for r in await rows(db, ResultSubscription)}
    assert subscriptions[opted_out].status == "opted_out" and subscriptions[opted_out].sms_message_id is None
    assert subscriptions[blocked].status == "suppressed"
    (sms,) = await rows(db, SmsMessage)
    assert (sms.id, sms.status, sms.suppress_reason) == (subscriptions[blocked].sms_message_id, "suppressed",
                                                         "opted_out")  # fmt: skip
    no_template = await admit(inbox, db, mrn="M012", phones="13800000012")
    response = await agent.post(f"/api/patients/{no_template}/result-subscriptions", json={"order_number": "O-2"})
    assert response.status_code == 201
    async with db.sessions() as session, session.begin():
        from patientline.channels.models import SmsTemplate

        template = await session.scalar(select(SmsTemplate).where(SmsTemplate.code == "result_ready"))
        assert template is not None
        template.is_active = False
    async with db.sessions() as session, session.begin():
        await results.record_status(session, patient_id=no_template, source="fhir",
                                    status=ResultStatus(order_number="O-2", status="final"))  # fmt: skip
    (failed,) = await rows(db, ResultSubscription, ResultSubscription.patient_id == no_template)
    assert failed.status == "failed"
    listed = (await agent.get(f"/api/patients/{opted_out}/result-subscriptions")).json()
    assert listed[0]["status"] == "opted_out"


async def test_a_merge_carries_the_subscription_to_the_survivor(inbox: Hl7Inbox, agent: Client, db: Any) -> None:
    survivor = await admit(inbox, db, mrn="M020", phones="13800000020")
    duplicate = await admit(inbox, db, mrn="M021", phones="13800000021")
    response = await agent.post(f"/api/patients/{duplicate}/result-subscriptions", json={"order_number": "LAB-7"})
    assert response.status_code == 201
    survivor_pid = "PID|1||M020^^^HIS^MR||王^小明||19800101|M"
    merge = adt("A40", "MERGE-1", segments=["EVN|A40", survivor_pid, "MRG|M021^^^HIS^MR"])
    assert (await inbox.receive(merge.encode())).code == "AA"
    await report(inbox, "F", "R1", order="LAB-7", pid_segment=survivor_pid)
    (sms,) = await rows(db, SmsMessage)
    assert (sms.patient_id, sms.phone) == (survivor, "+8613800000021")  # the number the patient gave
    merged_view = (await agent.get(f"/api/patients/{duplicate}/result-subscriptions")).json()
    assert [s["status"] for s in merged_view] == ["sent"]  # the old id answers as the survivor


async def test_reads_need_the_permission(inbox: Hl7Inbox, as_user: Any, db: Any, anon: Client) -> None:
    patient_id = await admit(inbox, db)
    async with as_user("qa1", ["qa"]) as qa:
        assert_error(await qa.get(f"/api/patients/{patient_id}/results"), 403)
        assert_error(await qa.get(f"/api/patients/{patient_id}/result-subscriptions"), 403)
        assert_error(await qa.post(f"/api/patients/{patient_id}/result-subscriptions",
                                   json={"order_number": "X"}), 403)  # fmt: skip
    assert_error(await anon.get(f"/api/patients/{patient_id}/results"), 401)
    async with db.sessions() as session:
        reads = await session.scalar(select(func.count()).where(AuditEntry.action == "patients.read"))
    assert reads == 0


async def test_record_status_refuses_bad_input(inbox: Hl7Inbox, db: Any) -> None:
    patient_id = await admit(inbox, db)
    from patientline.core.errors import InvalidInput, NotFound

    async with db.sessions() as session, session.begin():
        with pytest.raises(InvalidInput):
            await results.record_status(session, patient_id=patient_id, source="fhir",
                                        status=ResultStatus(order_number="X", status="done"))  # fmt: skip
        with pytest.raises(InvalidInput):
            await results.record_status(session, patient_id=patient_id, source="fhir",
                                        status=ResultStatus(order_number=" ", status="final"))  # fmt: skip
        with pytest.raises(NotFound):
            await results.record_status(session, patient_id=999999, source="fhir",
                                        status=ResultStatus(order_number="X", status="final"))  # fmt: skip
