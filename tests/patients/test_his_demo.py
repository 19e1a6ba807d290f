"""The demo patients: the simulated HIS's people in the local index (same ids, identifiers and phones),
families on one mobile, a VIP, an abusive-caller flag, prospective patients, results and subscriptions;
loading twice changes nothing; the demo's results loop makes a result final and announces it over MLLP."""

from __future__ import annotations

from collections import Counter
from typing import Any

from his_servers import free_port
from sqlalchemy import func, select

from patientline.core.config import Settings
from patientline.patients import index
from patientline.patients.demo import ABUSIVE, DemoResults, load_demo_patients, oru_message
from patientline.patients.gateway import HisGateway
from patientline.patients.his import ResultStatus
from patientline.patients.models import Patient, PatientFlag, PatientResult, ResultSubscription
from patientline.patients.simulator import SimulatedHis, population


async def test_demo_patients_match_the_simulated_his(db: Any) -> None:
    async with db.sessions() as session, session.begin():
        said = await load_demo_patients(session)
    assert said.startswith("loaded 300 demo patients")
    async with db.sessions() as session, session.begin():
        assert await load_demo_patients(session) == "demo patients already loaded"

    his = SimulatedHis()
    people = population()
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Patient)) == 304
        prospective = list(await session.scalars(select(Patient).where(Patient.prospective.is_(True))))
        assert len(prospective) == 4 and all(p.his_id is None for p in prospective)

        family_phone = Counter(p.record.phones[0] for p in people).most_common(1)[0][0]
        local = await index.find_by_phone(session, family_phone)
        remote = await HisGateway(his).search(phone=family_phone)
        assert len(local) >= 2 and {p.his_id for p in local} == {r.his_id for r in remote}
        assert len({p.birth_date for p in local}) == len(local)

        for person in people[:20]:
            found = await index.find_by_identifier(session, "id_card", person.record.identifiers["id_card"])
            assert found is not None and found.his_id == person.record.his_id and found.name == person.record.name

        vip = await session.scalar(select(Patient).where(Patient.vip_level > 0))
        assert vip is not None and vip.vip_note
        [flag] = await session.scalars(select(PatientFlag))
        assert (
            flag.kind == "abusive"
            and flag.note
            and flag.patient_id
            == (await index.find_by_identifier(session, "mrn", people[ABUSIVE].record.identifiers["mrn"])).id
        )  # type: ignore[union-attr]

        held = Counter(r.status for r in await session.scalars(select(PatientResult)))
        expected = Counter(r.status for p in people for r in p.results)
        assert held == expected and held["final"] > 0 and held["registered"] + held["preliminary"] > 0
        waiting = list(await session.scalars(select(ResultSubscription)))
        assert len(waiting) == 3 and {s.status for s in waiting} == {"waiting"}


async def test_the_results_loop_announces_a_result_over_mllp(db: Any, settings: Settings) -> None:
    from patientline.patients.mllp import start_listener

    async with db.sessions() as session, session.begin():
        await load_demo_patients(session)
    listening = settings.model_copy(update={"hl7_listen": f"127.0.0.1:{free_port()}"})
    server = await start_listener(db, listening)
    his = SimulatedHis()
    loop = DemoResults(db, HisGateway(his), listening, every_s=3600)
    try:
        order_number = await loop.step()
    finally:
        await server.stop()
    assert order_number is not None
    async with db.sessions() as session:
        subscription = await session.scalar(
            select(ResultSubscription).where(ResultSubscription.order_number == order_number)
        )
        assert subscription is not None and subscription.status != "waiting"  # the patient waiting came first
        result = await session.scalar(select(PatientResult).where(PatientResult.order_number == order_number))
        assert result is not None and (result.status, result.source) == ("final", "hl7")
    assert all(r.order_number != order_number for _, r in his.pending_results())


def test_the_oru_message_shape() -> None:
    record = population(size=1)[0].record
    text = oru_message(record, ResultStatus(order_number="L1", name="血常规", status="final"), control_id="C1")
    segments = text.strip("\r").split("\r")
    assert [s[:3] for s in segments] == ["MSH", "PID", "OBR"]
    assert f"{record.his_id}^^^HIS^PI" in segments[1] and segments[2].endswith("|HM|F")


async def test_the_results_loop_runs_with_the_demo_and_stops_with_the_app(settings: Settings) -> None:
    from patientline.web.app import create_app

    app = create_app(settings.model_copy(update={"demo_traffic": True, "roles": "web,worker"}))
    async with app.router.lifespan_context(app):
        tasks = set(app.state.pl.his._tasks)
        assert len(tasks) == 1 and not next(iter(tasks)).done()
    assert next(iter(tasks)).cancelled()

    quiet = create_app(settings.model_copy(update={"roles": "web,worker"}))
    async with quiet.router.lifespan_context(quiet):
        assert not quiet.state.pl.his._tasks
