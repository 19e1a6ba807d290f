"""A small knowledge base, doctors and a team for the quiz tests (plain module: fixtures live in the
test files)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from helpers import Client
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Permission
from patientline.directory.models import Department, Site, Staff, Team, TeamMember
from patientline.knowledge import service
from patientline.knowledge.models import ClinicSession, Doctor

EDITOR = Actor(
    user_id=None, username="editor", display_name="Editor", roles=("admin",), permissions=frozenset(Permission)
)

# category code -> (name, parent code)
CATEGORIES = {
    "OPD": ("门诊", None),
    "REG": ("挂号", "OPD"),
    "APPT": ("预约", "REG"),
    "PAY": ("缴费", "OPD"),
    "IPD": ("住院", None),
    "ADM": ("入院", "IPD"),
}
# category code -> (question, spoken answer)
ITEMS = {
    "APPT": [
        ("怎么预约专家号？", "通过医院公众号或拨打8585预约专家号。"),
        ("预约后怎么取消？", "就诊前一天17点前在公众号取消预约。"),
        ("可以预约几天内的号？", "可以预约7天内的号源。"),
    ],
    "REG": [
        ("挂号需要带什么？", "请携带身份证和医保卡。"),
        ("现场挂号几点开始？", "现场挂号早上7点开始。"),
    ],
    "PAY": [
        ("门诊怎么缴费？", "在自助机或窗口用医保卡缴费。"),
        ("可以用支付宝缴费吗？", "可以，扫描缴费单上的二维码。"),
    ],
    "ADM": [
        ("入院要准备什么？", "带住院证、身份证和医保卡到入院处办理。"),
        ("入院押金多少？", "押金按科室不同为三千到一万元。"),
        ("周末可以办入院吗？", "周末入院处上午8点到12点办公。"),
    ],
}
DRAFT_QUESTION = "挂号费多少钱？"
LONG_QUESTION = "停车场在哪里？"
LONG_ANSWER = "<p>" + "医院停车场位于门诊楼北侧地下一层，入口在北门。" * 8 + "</p>"


@dataclass
class Base:
    categories: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)  # question -> item id
    answers: dict[str, str] = field(default_factory=dict)  # question -> spoken answer
    area_of: dict[str, str] = field(default_factory=dict)  # question -> category code


async def build_base(db: Any, *, long_answer: bool = False) -> Base:
    """Published items in two domains; one draft that a quiz must never use."""
    base = Base()
    async with db.sessions() as session, session.begin():
        for code, (name, parent) in CATEGORIES.items():
            parent_id = base.categories[parent] if parent else None
            row = await service.create_category(
                session, actor=EDITOR, values={"code": code, "name": name, "parent_id": parent_id}
            )
            base.categories[code] = row.id
        for code, entries in ITEMS.items():
            for question, spoken in entries:
                await _publish(session, base, code, question, spoken=spoken)
                base.answers[question] = spoken
        await service.create_item(
            session, actor=EDITOR, values={"category_id": base.categories["REG"], "question": DRAFT_QUESTION,
                                           "spoken": "挂号费五元。"},
        )  # fmt: skip
        if long_answer:
            await _publish(session, base, "ADM", LONG_QUESTION, answer_html=LONG_ANSWER)
    return base


async def _publish(session: Any, base: Base, code: str, question: str, **answer: str) -> None:
    values = {"category_id": base.categories[code], "question": question} | answer
    item = await service.create_item(session, actor=EDITOR, values=values)
    await service.publish_now(session, actor=EDITOR, item_id=item.id)
    base.items[question] = item.id
    base.area_of[question] = code


DOCTORS = [  # name, department, sessions
    ("王芳", "消化内科", [(2, "pm", "专家门诊"), (4, "am", "普通门诊")]),
    ("李强", "消化内科", [(1, "am", "普通门诊")]),
    ("赵敏", "消化内科", [(3, "pm", "专家门诊")]),
    ("陈刚", "消化内科", [(5, "am", "普通门诊")]),
    ("刘洋", "心内科", [(2, "pm", "专家门诊"), (3, "am", "普通门诊")]),
]


async def add_doctors(db: Any) -> None:
    async with db.sessions() as session, session.begin():
        site = Site(code="MAIN", name="本院", version=1)
        session.add(site)
        await session.flush()
        departments: dict[str, int] = {}
        for index, (name, department, slots) in enumerate(DOCTORS, start=1):
            if department not in departments:
                row = Department(code=f"D{len(departments) + 1}", name=department, site_id=site.id, version=1)
                session.add(row)
                await session.flush()
                departments[department] = row.id
            doctor = Doctor(code=f"DR{index}", name=name, site_id=site.id, department_id=departments[department],
                            version=1)  # fmt: skip
            session.add(doctor)
            await session.flush()
            for weekday, half_day, kind in slots:
                session.add(ClinicSession(doctor_id=doctor.id, weekday=weekday, half_day=half_day, kind=kind,
                                          version=1))  # fmt: skip


async def add_team(db: Any, *, code: str, user_ids: list[int], without_login: int = 0) -> int:
    """A team whose members are staff linked to `user_ids`, plus members without a login."""
    async with db.sessions() as session, session.begin():
        team = Team(code=code, name=f"{code} 组", version=1)
        session.add(team)
        await session.flush()
        people = [(f"{code}-{u}", u) for u in user_ids] + [(f"{code}-x{n}", None) for n in range(without_login)]
        for staff_code, user_id in people:
            staff = Staff(code=staff_code, name=staff_code, user_id=user_id, version=1)
            session.add(staff)
            await session.flush()
            session.add(TeamMember(team_id=team.id, staff_id=staff.id))
        return int(team.id)


@asynccontextmanager
async def logged_in(app: Any, username: str) -> AsyncIterator[Client]:
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        client = Client(http)
        assert (await client.login(username)).status_code == 200
        yield client
