"""A simulated HIS for the demo and tests: fictional patients with visits, appointments and lab or
imaging results made from a seed (the same people on every run), behind the same `HIS` port as the
FHIR adapter, answering after a configurable delay and failing at a configurable rate, both changeable
while it runs (the HIS admin page), so the degraded mode can be shown.

Everyone here is made up: names from common characters, phone numbers in the 139 00xx xxxx block,
ID card numbers with a valid GB 11643 check digit for invented people. `simulator_fhir` serves the same
data as FHIR R4 over HTTP; `demo.load_demo_patients` puts the same people in the local index.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from stdnum.cn import ric

from patientline.core import clock
from patientline.patients.his import READY_STATUSES, Appointment, HisError, HisPatient, ResultStatus, Visit
from patientline.patients.models import IdentifierKind

DEMO_SEED = 8585
DEMO_SIZE = 300
TIMEZONE = ZoneInfo("Asia/Shanghai")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈"
GIVEN_MEN = ["建国", "志明", "海涛", "文军", "德华", "振华", "国强", "永红", "晓东", "立新", "明辉", "俊杰", "伟民"]
GIVEN_WOMEN = ["秀兰", "丽华", "桂芳", "春燕", "玉梅", "慧琴", "淑珍", "美玲", "红霞", "雪梅", "静怡", "秋菊"]
GIVEN_BOYS = ["浩宇", "宇轩", "俊熙", "沐阳", "天佑", "子墨"]
GIVEN_GIRLS = ["欣怡", "梓萱", "诗涵", "一诺", "雨桐", "语嫣"]
DEPARTMENTS = [
    "心内科", "呼吸内科", "消化内科", "神经内科", "内分泌科", "肾内科", "普通外科", "骨科", "泌尿外科",
    "妇科", "产科", "儿科", "眼科", "耳鼻咽喉科", "口腔科", "皮肤科", "中医科", "康复科", "急诊科",
]  # fmt: skip
DOCTORS = ["周立平", "吴晓岚", "郑国华", "孙慧敏", "钱志远", "冯雅琴", "陈德胜", "褚文博", "卫秀英", "蒋振宇"]
LAB_TESTS = ["血常规", "尿常规", "肝功能", "肾功能", "血脂四项", "糖化血红蛋白", "甲状腺功能", "凝血四项", "电解质"]
IMAGING_TESTS = ["胸部 CT 平扫", "腹部彩超", "头颅 MRI", "心脏彩超", "膝关节 X 线", "甲状腺彩超"]
REGIONS = ("110101", "110102", "110105", "110108", "310101", "310104", "120101")  # valid for every birth year here
PENDING = ("registered", "partial", "preliminary")


@dataclass
class SimulatedPatient:
    """One person in the simulated HIS with what the HIS knows of them."""

    record: HisPatient
    visits: list[Visit] = field(default_factory=list)
    appointments: list[Appointment] = field(default_factory=list)
    results: list[ResultStatus] = field(default_factory=list)
    family: int | None = None  # people with the same family number share a mobile


def id_card_number(region: str, birth: date, serial: int, *, male: bool) -> str:
    """A GB 11643 number for an invented person: region, birth date, a serial whose last digit is odd
    for men, and the check digit."""
    sequence = (serial % 50) * 2 + (1 if male else 0)
    body = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def demo_phone(number: int) -> str:
    """+86 139 00xx xxxx: valid Chinese mobile numbers reserved here for made-up people."""
    return f"+8613900{number % 1_000_000:06d}"


def population(*, seed: int = DEMO_SEED, size: int = DEMO_SIZE, today: date | None = None) -> list[SimulatedPatient]:
    """`size` people, the same for the same seed (dates move with `today`): about a third live in
    families of two to four sharing one mobile number (parents and children with their own birth dates)."""
    rng = random.Random(seed)  # noqa: S311 - made-up people, not secrets
    today = today or clock.today(str(TIMEZONE))
    people: list[SimulatedPatient] = []
    family = 0
    while len(people) < size:
        index = len(people)
        if rng.random() < 0.1 and size - index >= 2:
            family += 1
            members = min(rng.randint(2, 4), size - index)
            phone = demo_phone(index)
            surname = rng.choice(SURNAMES)
            for member in range(members):
                child = member >= 2 or (member == 1 and members == 2 and rng.random() < 0.5)
                male = rng.random() < 0.5 if child else member == 0  # a couple: husband and wife
                people.append(
                    _person(
                        rng,
                        len(people),
                        today,
                        surname=surname if member != 1 or child else rng.choice(SURNAMES),
                        phone=phone,
                        child=child,
                        male=male,
                        family=family,
                    )
                )
        else:
            people.append(
                _person(rng, index, today, surname=rng.choice(SURNAMES), phone=demo_phone(index),
                        child=rng.random() < 0.1, male=rng.random() < 0.5, family=None)
            )  # fmt: skip
    return people


def _person(
    rng: random.Random, number: int, today: date, *, surname: str, phone: str, child: bool, male: bool,
    family: int | None,
) -> SimulatedPatient:  # fmt: skip
    if child:
        birth = date(today.year - rng.randint(2, 16), rng.randint(1, 12), rng.randint(1, 28))
        given = rng.choice(GIVEN_BOYS if male else GIVEN_GIRLS)
    else:
        age = rng.randint(30, 50) if family is not None else rng.randint(20, 85)  # parents, else anyone
        birth = date(today.year - age, rng.randint(1, 12), rng.randint(1, 28))
        given = rng.choice(GIVEN_MEN if male else GIVEN_WOMEN)
    his_id = f"sim-{number + 1:05d}"
    identifiers = {
        IdentifierKind.MRN: f"M{2020000 + number * 7:07d}",
        IdentifierKind.VISIT_CARD: f"V{880000 + number:06d}",
        IdentifierKind.ID_CARD: id_card_number(rng.choice(REGIONS), birth, number, male=male),
    }
    if rng.random() < 0.6:
        identifiers[IdentifierKind.INSURANCE] = f"YB{31000000 + number * 13:08d}"
    record = HisPatient(
        his_id=his_id, identifiers=identifiers, name=surname + given, sex="male" if male else "female",
        birth_date=birth, phones=[phone],
    )  # fmt: skip
    person = SimulatedPatient(record=record, family=family)
    for visit in range(rng.randint(0, 5)):
        day = today - timedelta(days=rng.randint(1, 720))
        start = datetime.combine(day, time(rng.randint(8, 16), rng.choice((0, 15, 30, 45))), tzinfo=TIMEZONE)
        kind = "inpatient" if rng.random() < 0.1 else ("emergency" if rng.random() < 0.08 else "outpatient")
        end = start + (timedelta(days=rng.randint(2, 12)) if kind == "inpatient" else timedelta(minutes=20))
        person.visits.append(
            Visit(id=f"{his_id}-v{visit + 1}", kind=kind, department=rng.choice(DEPARTMENTS),
                  doctor=rng.choice(DOCTORS), start=start, end=end, status="finished")
        )  # fmt: skip
    person.visits.sort(key=lambda v: v.start or start, reverse=True)
    for appointment in range(rng.choice((0, 0, 1, 1, 2))):
        day = today + timedelta(days=rng.randint(1, 21))
        start = datetime.combine(day, time(rng.randint(8, 16), rng.choice((0, 20, 40))), tzinfo=TIMEZONE)
        person.appointments.append(
            Appointment(id=f"{his_id}-a{appointment + 1}", start=start, department=rng.choice(DEPARTMENTS),
                        doctor=rng.choice(DOCTORS), status="booked")
        )  # fmt: skip
    person.appointments.sort(key=lambda a: a.start or start)
    for result in range(rng.choice((0, 0, 1, 1, 2, 3))):
        imaging = rng.random() < 0.3
        ordered = today - timedelta(days=rng.randint(0, 10))
        pending = rng.random() < 0.4
        issued = datetime.combine(ordered + timedelta(days=1), time(rng.randint(9, 17)), tzinfo=TIMEZONE)
        person.results.append(
            ResultStatus(
                order_number=f"{'R' if imaging else 'L'}{ordered:%y%m%d}{number + 1:05d}{result + 1}",
                name=rng.choice(IMAGING_TESTS if imaging else LAB_TESTS),
                category="imaging" if imaging else "lab",
                status=rng.choice(PENDING[::2]) if pending else "final",
                issued_at=None if pending else issued,
                conclusion="" if pending else ("未见明显异常" if imaging else "各项指标在参考范围内"),
            )
        )
    return person


class SimulatedHis:
    """`patients.his.HIS` in process, for the demo and tests."""

    name = "simulator"

    def __init__(
        self,
        *,
        seed: int = DEMO_SEED,
        size: int = DEMO_SIZE,
        latency_ms: int = 0,
        failure_rate: float = 0.0,
        today: date | None = None,
    ) -> None:
        self.seed = seed
        self.latency_ms = 0
        self.failure_rate = 0.0
        self.configure(latency_ms=latency_ms, failure_rate=failure_rate)
        self.calls = 0
        self._size = size
        self._today = today
        self._people: dict[str, SimulatedPatient] | None = None  # made on first use: start-up stays quick
        self._by_identifier: dict[tuple[str, str], str] = {}
        self._by_phone: dict[str, list[str]] = {}
        self._failures = random.Random(seed + 1)  # noqa: S311 - simulated failures, not secrets

    def configure(self, *, latency_ms: int | None = None, failure_rate: float | None = None) -> None:
        if latency_ms is not None:
            if not 0 <= latency_ms <= 60_000:
                raise ValueError("latency_ms must be between 0 and 60000")
            self.latency_ms = latency_ms
        if failure_rate is not None:
            if not 0 <= failure_rate <= 1:
                raise ValueError("failure_rate must be between 0 and 1")
            self.failure_rate = failure_rate

    # ---- data -------------------------------------------------------------------------------------

    @property
    def people(self) -> dict[str, SimulatedPatient]:
        if self._people is None:
            self._people = {}
            for person in population(seed=self.seed, size=self._size, today=self._today):
                self._index(person)
        return self._people

    def _index(self, person: SimulatedPatient) -> None:
        assert self._people is not None  # noqa: S101
        his_id = person.record.his_id
        self._people[his_id] = person
        for kind, value in person.record.identifiers.items():
            self._by_identifier[(kind, value)] = his_id
        for phone in person.record.phones:
            holders = self._by_phone.setdefault(phone, [])
            if his_id not in holders:
                holders.append(his_id)

    def add_patient(
        self,
        record: HisPatient,
        *,
        visits: list[Visit] | None = None,
        appointments: list[Appointment] | None = None,
        results: list[ResultStatus] | None = None,
    ) -> SimulatedPatient:
        """A person the tests or the demo need; replaces one with the same his_id."""
        if record.his_id in self.people:
            old = self.people[record.his_id].record
            for kind, value in old.identifiers.items():
                self._by_identifier.pop((kind, value), None)
            for phone in old.phones:
                self._by_phone[phone] = [h for h in self._by_phone.get(phone, []) if h != record.his_id]
        person = SimulatedPatient(record, list(visits or []), list(appointments or []), list(results or []))
        self._index(person)
        return person

    def set_result_status(
        self, his_id: str, order_number: str, status: str, *, conclusion: str | None = None
    ) -> ResultStatus:
        """The lab or radiology moves a result on (KeyError for an unknown patient or order)."""
        person = self.people[his_id]
        for position, result in enumerate(person.results):
            if result.order_number == order_number:
                ready = status in READY_STATUSES
                changed = result.model_copy(
                    update={
                        "status": status,
                        "issued_at": (result.issued_at or clock.now()) if ready else None,
                        "conclusion": conclusion if conclusion is not None else result.conclusion,
                    }
                )
                person.results[position] = changed
                return changed
        raise KeyError(order_number)

    def add_result(self, his_id: str, result: ResultStatus) -> None:
        self.people[his_id].results.append(result)

    def pending_results(self) -> list[tuple[HisPatient, ResultStatus]]:
        """Results not yet ready, in a stable order."""
        return [
            (person.record, result) for person in self.people.values() for result in person.results if not result.ready
        ]

    # ---- the port ---------------------------------------------------------------------------------

    async def _answer(self) -> None:
        self.calls += 1
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        if self.failure_rate and self._failures.random() < self.failure_rate:
            raise HisError("the simulated HIS failed (its failure rate is set above zero)")

    async def find_patients(
        self, *, kind: str | None = None, value: str | None = None, phone: str | None = None
    ) -> list[HisPatient]:
        await self._answer()
        people = self.people  # made on first use, with the lookups below
        if kind is not None and value:
            his_id = self._by_identifier.get((kind, value.strip().upper()))
            return [] if his_id is None else [people[his_id].record]
        if phone:
            return [people[h].record for h in self._by_phone.get(phone, [])]
        raise HisError("a patient search needs an identifier or a phone number")

    async def visits(self, his_id: str) -> list[Visit]:
        await self._answer()
        person = self.people.get(his_id)
        return list(person.visits) if person else []

    async def appointments(self, his_id: str) -> list[Appointment]:
        await self._answer()
        person = self.people.get(his_id)
        return list(person.appointments) if person else []

    async def results(self, his_id: str) -> list[ResultStatus]:
        await self._answer()
        person = self.people.get(his_id)
        return list(person.results) if person else []

    async def check(self) -> None:
        await self._answer()

    async def close(self) -> None:
        return None
