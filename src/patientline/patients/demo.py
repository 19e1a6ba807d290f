"""The demo hospital's patients: the simulated HIS's 300 made-up people (same HIS ids, identifiers and
phone numbers, so the workbench's HIS calls find them) in the local index, with their result statuses;
families sharing a mobile number, a VIP patient with a designated expert, an abusive caller flagged with
a note, a few prospective patients registered by phone, and patients waiting for a result by SMS.

`DemoResults` runs beside the demo (PATIENTLINE_DEMO_TRAFFIC): every few minutes a pending result of the
simulated HIS turns final and the matching ORU^R01 goes over MLLP to this server's HL7 listener, so the
agents see "result available" and the waiting patient gets the text.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth.actor import SYSTEM, Actor
from patientline.core.auth.permissions import Permission
from patientline.core.auth.service import find_user_id
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.directory import service as directory
from patientline.patients import index, profile, results
from patientline.patients.gateway import HisGateway
from patientline.patients.his import HisPatient, ResultStatus
from patientline.patients.models import FlagKind, IdentifierKind, Patient, ResultSubscription
from patientline.patients.simulator import DEMO_SEED, DEMO_SIZE, SimulatedPatient, population

log = logging.getLogger(__name__)

VIP = 4  # the fifth made-up person: a VIP with a designated expert of 心内科
ABUSIVE = 9
ABUSIVE_NOTE = "多次在电话中辱骂坐席并威胁投诉媒体；接听时保持冷静，必要时转班长处理。"
VIP_NOTE = "特需医疗服务对象，心内科专家随访"
PROSPECTIVE = [  # callers registered by phone before their first visit
    ("钱多多", "female", date(1992, 4, 18), "+8613900990001"),
    ("欧阳明远", "male", date(1968, 11, 2), "+8613900990002"),
    ("司马静", "female", date(1985, 7, 25), "+8613900990003"),
    ("林一帆", "male", None, "+8613900990004"),
]
SUBSCRIPTIONS = 3  # pending results whose patients asked for a text when ready


def demo_actor(user_id: int | None) -> Actor:
    """The demo's loader acts as a supervisor would (the flag and VIP profile need those rights)."""
    permissions = frozenset({Permission.READ_PATIENTS.value, Permission.WRITE_PATIENTS.value,
                             Permission.MANAGE_PATIENTS.value})  # fmt: skip
    return Actor(user_id=user_id, username="demo", display_name="Demo", roles=(), permissions=permissions, via="system")


async def load_demo_patients(session: AsyncSession) -> str:
    """Caller owns the transaction. Loading twice changes nothing."""
    people = population(seed=DEMO_SEED, size=DEMO_SIZE)
    if await session.scalar(select(Patient.id).where(Patient.his_id == people[0].record.his_id)) is not None:
        return "demo patients already loaded"
    actor = demo_actor(await find_user_id(session, username="supervisor1"))
    ids: list[int] = []
    for person in people:
        patient = await index.upsert_from_his(session, actor=SYSTEM, record=person.record)
        ids.append(patient.id)
        for result in person.results:
            await results.record_status(session, patient_id=patient.id, status=result, source="fhir")
    vip = await index.get(session, ids[VIP])
    await profile.set_vip(session, actor=actor, patient_id=vip.id, expected_version=vip.version, level=2,
                          note=VIP_NOTE, expert_id=await _expert(session))  # fmt: skip
    await profile.add_flag(session, actor=actor, patient_id=ids[ABUSIVE], kind=FlagKind.ABUSIVE, note=ABUSIVE_NOTE)
    for name, sex, birth, phone in PROSPECTIVE:
        await index.register(session, actor=actor, person=index.Person(name=name, sex=sex, birth_date=birth,
                                                                       phones=[phone]), details={})  # fmt: skip
    waiting = _to_subscribe(people)
    for position, person, result in waiting:
        session.add(ResultSubscription(patient_id=ids[position], order_number=result.order_number,
                                       phone=person.record.phones[0], status=results.Sub.WAITING))  # fmt: skip
    families = len({p.family for p in people if p.family is not None})
    return (f"loaded {len(people)} demo patients ({families} families sharing a mobile), {len(PROSPECTIVE)} "
            f"prospective, {len(waiting)} waiting for a result")  # fmt: skip


async def _expert(session: AsyncSession) -> int | None:
    """A member of staff of 心内科 from the directory's demo, if it is loaded."""
    department = await directory.find_by_code(session, kind=directory.DEPARTMENTS, code="XNK")
    if department is None:
        return None
    staff = await directory.people_of(session, kind=directory.DEPARTMENTS, entity_id=department.id)
    return staff[0].id if staff else None


def _to_subscribe(people: list[SimulatedPatient]) -> list[tuple[int, SimulatedPatient, ResultStatus]]:
    chosen = []
    for position, person in enumerate(people):
        pending = [r for r in person.results if not r.ready]
        if pending and position not in (VIP, ABUSIVE):
            chosen.append((position, person, pending[0]))
        if len(chosen) == SUBSCRIPTIONS:
            break
    return chosen


# ---- results turning ready while the demo runs ----------------------------------------------------


def oru_message(record: HisPatient, result: ResultStatus, *, control_id: str, timezone: str = "Asia/Shanghai") -> str:
    """An ORU^R01 announcing `result` for `record`: PID-3 carries the HIS id (PI) and the record number
    (MR), OBR-3 the order number, OBR-24 the section (HM or RAD), OBR-25 the status (F)."""
    now = clock.now().astimezone(ZoneInfo(timezone))
    stamp = now.strftime("%Y%m%d%H%M%S%z")
    mrn = record.identifiers.get(IdentifierKind.MRN, "")
    pid3 = f"{record.his_id}^^^HIS^PI" + (f"~{mrn}^^^HIS^MR" if mrn else "")
    name = f"{record.name[:1]}^{record.name[1:]}"
    birth = record.birth_date.strftime("%Y%m%d") if record.birth_date else ""
    sex = {"male": "M", "female": "F"}.get(record.sex, "U")
    phone = record.phones[0].removeprefix("+86") if record.phones else ""
    section = "RAD" if result.category == "imaging" else "HM"
    status = "F" if result.ready else "P"
    segments = [
        f"MSH|^~\\&|DEMO-LIS|DEMO-HOSP|PATIENTLINE|CC|{stamp}||ORU^R01^ORU_R01|{control_id}|P|2.5||||||UNICODE UTF-8",
        f"PID|1||{pid3}||{name}||{birth}|{sex}|||||{phone}",
        f"OBR|1|P-{result.order_number}|{result.order_number}|^{result.name}^L|||{stamp}|||||||||||||||{stamp}||"
        f"{section}|{status}",
    ]
    return "\r".join(segments) + "\r"


@dataclass
class DemoResults:
    """Every `every_s` seconds one pending result of the simulated HIS becomes final (first those a
    patient is waiting for) and is announced by ORU^R01 to `settings.hl7_listen` (if set; otherwise the
    results sweep and the workbench find it over the HIS port)."""

    db: Database
    gateway: HisGateway
    settings: Settings
    every_s: float = 180.0
    rng: random.Random = field(default_factory=lambda: random.Random(8586))  # noqa: S311 - made-up results
    sent: int = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.step()
            except Exception:
                log.exception("demo results step failed")

    async def step(self) -> str | None:
        """One result made final and announced; returns its order number (None: nothing pending)."""
        simulator = self.gateway.simulator
        if simulator is None:
            return None
        pending = {(record.his_id, result.order_number): record for record, result in simulator.pending_results()}
        if not pending:
            return None
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(Patient.his_id, ResultSubscription.order_number)
                .join(Patient, Patient.id == ResultSubscription.patient_id)
                .where(ResultSubscription.status == results.Sub.WAITING)
                .order_by(ResultSubscription.id)
            )
            awaited = [(str(his_id), str(order)) for his_id, order in rows if (his_id, order) in pending]
        his_id, order_number = awaited[0] if awaited else self.rng.choice(sorted(pending))
        final = simulator.set_result_status(his_id, order_number, "final")
        if self.settings.hl7_listen:
            from patientline.patients import mllp

            host, port = mllp.parse_listen(self.settings.hl7_listen)
            self.sent += 1
            message = oru_message(pending[(his_id, order_number)], final, control_id=f"DEMO{self.sent:06d}",
                                  timezone=self.settings.timezone)  # fmt: skip
            [ack] = await mllp.send(host, port, [message], ack_seconds=10.0)
            if mllp.ack_code(ack) != "AA":
                log.warning("demo ORU^R01 not accepted", extra={"ack": mllp.ack_code(ack)})
        return order_number
