"""The demo hospital: a fictional 示例市第一人民医院 with two sites, the 30 clinical departments of the
evaluation list plus medical-technology and administrative ones, three teams, agents, supervisors and a
handler for every department. Made-up names and numbers only. Loading twice changes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels.demo import load_demo_channels
from patientline.contacts.demo import load_demo_contacts
from patientline.core.auth.actor import SYSTEM
from patientline.core.auth.service import create_user
from patientline.core.config import Settings
from patientline.core.db import Database
from patientline.directory import service as directory
from patientline.directory.imports import LAYOUTS
from patientline.knowledge.demo import load_demo_knowledge
from patientline.patients.demo import load_demo_patients
from patientline.routing.demo import load_demo_routing
from patientline.voice.demo import load_demo_voice
from patientline.workorders.demo import load_demo_workorders

DEMO_PASSWORD = "Demo-8585-2026"  # noqa: S105 - the published password of the demo accounts
HOSPITAL = "示例市第一人民医院"

SITES = [
    {
        "code": "MAIN",
        "name": "院本部",
        "address": "示例市健康路 1 号",
        "phone": "010-65550000",
        "hours": "08:00-12:00,13:30-17:30",
    },
    {
        "code": "EAST",
        "name": "东院区",
        "address": "示例市东湖大道 88 号",
        "phone": "010-65551000",
        "hours": "08:00-12:00,13:00-17:00",
    },
]

# (code, name, group, location)
CLINICAL = [
    ("XNK", "心内科", "NK", "门诊楼 3 层 A 区"),
    ("HXNK", "呼吸内科", "NK", "门诊楼 3 层 B 区"),
    ("XHNK", "消化内科", "NK", "门诊楼 3 层 C 区"),
    ("SJNK", "神经内科", "NK", "门诊楼 4 层 A 区"),
    ("NFMK", "内分泌科", "NK", "门诊楼 4 层 B 区"),
    ("SNK", "肾内科", "NK", "门诊楼 4 层 C 区"),
    ("XYK", "血液科", "NK", "门诊楼 5 层 A 区"),
    ("FSMY", "风湿免疫科", "NK", "门诊楼 5 层 B 区"),
    ("GRK", "感染科", "NK", "感染楼 1 层"),
    ("PTWK", "普通外科", "WK", "门诊楼 2 层 A 区"),
    ("GK", "骨科", "WK", "门诊楼 2 层 B 区"),
    ("MNWK", "泌尿外科", "WK", "门诊楼 2 层 C 区"),
    ("SJWK", "神经外科", "WK", "门诊楼 6 层 A 区"),
    ("XXWK", "心胸外科", "WK", "门诊楼 6 层 B 区"),
    ("RXWK", "乳腺外科", "WK", "门诊楼 6 层 C 区"),
    ("GCWK", "肛肠外科", "WK", "门诊楼 2 层 D 区"),
    ("ZXWK", "整形外科", "WK", "门诊楼 7 层 A 区"),
    ("FK", "妇科", "FCK", "妇儿楼 2 层"),
    ("CK", "产科", "FCK", "妇儿楼 3 层"),
    ("EK", "儿科", None, "妇儿楼 1 层"),
    ("YK", "眼科", "WG", "门诊楼 8 层 A 区"),
    ("EBH", "耳鼻咽喉科", "WG", "门诊楼 8 层 B 区"),
    ("KQK", "口腔科", "WG", "门诊楼 8 层 C 区"),
    ("PFK", "皮肤科", None, "门诊楼 7 层 B 区"),
    ("JSXL", "精神心理科", None, "门诊楼 7 层 C 区"),
    ("ZLK", "肿瘤科", None, "住院楼 10 层"),
    ("NANK", "男科", None, "门诊楼 2 层 E 区"),
    ("JZK", "急诊科", None, "急诊楼 1 层"),
    ("ZYK", "中医科", None, "门诊楼 9 层"),
    ("KFK", "康复科", None, "康复楼 1 层"),
]
GROUPS = [("NK", "内科系统"), ("WK", "外科系统"), ("FCK", "妇产科系统"), ("WG", "五官科系统")]
MEDICAL_TECHNOLOGY = [
    ("JYK", "检验科", "门诊楼 1 层 东侧"),
    ("FSK", "放射科", "医技楼 1 层"),
    ("CSK", "超声科", "医技楼 2 层"),
    ("BLK", "病理科", "医技楼 3 层"),
    ("YJK", "药剂科", "门诊楼 1 层 西侧"),
]
ADMINISTRATIVE = [
    ("MZB", "门诊部", "行政楼 2 层"),
    ("YWC", "医务处", "行政楼 3 层"),
    ("HLB", "护理部", "行政楼 3 层"),
    ("YBB", "医保办", "门诊楼 1 层 医保窗口"),
    ("HZFW", "患者服务中心", "门诊楼 1 层 大厅"),
]
EAST_BRANCHES = ["XNK", "XHNK", "GK", "EK", "FK", "YK", "PFK", "JZK", "JYK", "FSK"]

TEAMS = [
    {"code": "HOTLINE", "name": "综合热线组", "kind": "skill_group", "description": "8585 综合咨询、挂号、回电"},
    {"code": "EXPERT", "name": "专家中心", "kind": "expert_centre", "description": "跨院区专家咨询与转接"},
    {"code": "INSURANCE", "name": "医保咨询组", "kind": "skill_group", "description": "医保政策与报销咨询"},
    {"code": "XNK-SEATS", "name": "心内科坐席", "kind": "department_seats", "department": "XNK",
     "description": "心内科护士站坐席：心内科的来电与在线咨询"},
]  # fmt: skip
SKILLS = [
    ("GENERAL", "综合咨询"),
    ("BOOKING", "预约挂号"),
    ("INSURANCE", "医保政策"),
    ("COMPLAINT", "投诉受理"),
    ("TRIAGE", "导诊分诊"),
    ("ENGLISH", "英语服务"),
]
AGENT_NAMES = [
    "林晓雨",
    "陈思远",
    "王若溪",
    "张一鸣",
    "刘佳怡",
    "杨子涵",
    "赵明轩",
    "黄诗琪",
    "周雨桐",
    "吴浩然",
    "徐梦瑶",
    "孙嘉禾",
]
SUPERVISOR_NAMES = ["高文静", "郑立新"]
SURNAMES = (
    "李王张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏"
)
GIVEN = ["建华", "秀英", "志强", "丽娟", "海燕", "国平", "桂兰", "文博", "春梅", "德明", "玉兰", "振宇", "慧敏", "永刚"]


def handler_name(index: int) -> str:
    """A made-up name, the same on every run."""
    return SURNAMES[index % len(SURNAMES)] + GIVEN[(index * 5) % len(GIVEN)]


@dataclass
class Seeded:
    sites: dict[str, int]
    departments: dict[str, int]
    teams: dict[str, int]
    skills: dict[str, int]


async def _create(session: AsyncSession, kind: directory.Kind, values: dict[str, Any]) -> int:
    clean = LAYOUTS[kind.name].create.model_validate(values).model_dump(mode="json")
    row = await directory.create(session, actor=SYSTEM, kind=kind, values=clean)
    return int(row.id)


async def _directory(session: AsyncSession) -> Seeded:
    seeded = Seeded({}, {}, {}, {})
    for site in SITES:
        seeded.sites[site["code"]] = await _create(session, directory.SITES, site)
    main = seeded.sites["MAIN"]
    for code, name in GROUPS:
        seeded.departments[code] = await _create(
            session, directory.DEPARTMENTS, {"code": code, "name": name, "site_id": main, "kind": "clinical"}
        )
    for index, (code, name, group, location) in enumerate(CLINICAL):
        seeded.departments[code] = await _create(
            session,
            directory.DEPARTMENTS,
            {
                "code": code,
                "name": name,
                "site_id": main,
                "kind": "clinical",
                "location": location,
                "parent_id": seeded.departments.get(group) if group else None,
                "triage_department": name,
                "phone": f"010-6555{2000 + index:04d}",
                "hours": "周一至周五 08:00-12:00, 13:30-17:30",
            },
        )
    for kind, rows in (("medical_technology", MEDICAL_TECHNOLOGY), ("administrative", ADMINISTRATIVE)):
        for index, (code, name, location) in enumerate(rows):
            seeded.departments[code] = await _create(
                session,
                directory.DEPARTMENTS,
                {
                    "code": code,
                    "name": name,
                    "site_id": main,
                    "kind": kind,
                    "location": location,
                    "phone": f"010-6555{3000 + index + (20 if kind == 'administrative' else 0):04d}",
                    "hours": "24 小时" if code in ("JYK", "FSK", "YJK") else "周一至周五 08:00-17:30",
                },
            )
    names = {code: name for code, name, *_ in CLINICAL + MEDICAL_TECHNOLOGY}
    for index, code in enumerate(EAST_BRANCHES):
        seeded.departments[f"{code}-E"] = await _create(
            session,
            directory.DEPARTMENTS,
            {
                "code": f"{code}-E",
                "name": names[code],
                "site_id": seeded.sites["EAST"],
                "kind": "medical_technology" if code in ("JYK", "FSK") else "clinical",
                "triage_department": None if code in ("JYK", "FSK") else names[code],
                "location": f"东院区门诊楼 {1 + index // 4} 层",
                "phone": f"010-6555{4000 + index:04d}",
                "hours": "周一至周六 08:00-12:00, 13:00-17:00",
            },
        )
    for team in TEAMS:
        department = team.get("department")
        values: dict[str, Any] = {k: v for k, v in team.items() if k != "department"}
        if department:
            values["department_id"] = seeded.departments[department]
        seeded.teams[team["code"]] = await _create(session, directory.TEAMS, values)
    for code, name in SKILLS:
        seeded.skills[code] = await _create(session, directory.SKILLS, {"code": code, "name": name})
    return seeded


async def _people(session: AsyncSession, settings: Settings, seeded: Seeded) -> None:
    async def person(username: str, name: str, roles: list[str], staff: dict[str, Any]) -> None:
        user = await create_user(
            session,
            actor=SYSTEM,
            settings=settings,
            username=username,
            display_name=name,
            password=DEMO_PASSWORD,
            roles=roles,
            must_change_password=False,
            department_ids=[staff["department_id"]] if "handler" in roles else [],
        )
        await _create(session, directory.STAFF, staff | {"name": name, "user_id": user.id})

    centre = seeded.departments["HZFW"]
    main = seeded.sites["MAIN"]
    await person(
        "admin",
        "系统管理员",
        ["admin"],
        {"code": "E0001", "site_id": main, "department_id": centre, "title": "信息科工程师"},
    )
    for index, name in enumerate(SUPERVISOR_NAMES, start=1):
        await person(
            f"supervisor{index}",
            name,
            ["supervisor", "qa"],
            {
                "code": f"E01{index:02d}",
                "site_id": main,
                "department_id": centre,
                "title": "班长",
                "team_ids": list(seeded.teams.values()),
                "skills": [{"skill_id": s, "level": 5} for s in seeded.skills.values()],
            },
        )
    for index, name in enumerate(AGENT_NAMES, start=1):
        team = [
            "HOTLINE",
            "HOTLINE",
            "HOTLINE",
            "HOTLINE",
            "HOTLINE",
            "HOTLINE",
            "EXPERT",
            "EXPERT",
            "EXPERT",
            "INSURANCE",
            "INSURANCE",
            "HOTLINE",
        ][index - 1]
        skills = {"GENERAL": 3 + index % 3, "BOOKING": 2 + index % 4, "TRIAGE": 1 + index % 5}
        if team == "INSURANCE":
            skills["INSURANCE"] = 5
        if index % 4 == 0:
            skills["COMPLAINT"] = 4
        if index == 7:
            skills["ENGLISH"] = 4
        await person(
            f"agent{index:02d}",
            name,
            ["agent"],
            {
                "code": f"E02{index:02d}",
                "site_id": main if index <= 9 else seeded.sites["EAST"],
                "department_id": centre,
                "title": "坐席",
                "phone": f"139{index:04d}{8585 + index:04d}",
                "team_ids": [seeded.teams[team]],
                "skills": [{"skill_id": seeded.skills[k], "level": v} for k, v in skills.items()],
            },
        )
    for index, (code, department_id) in enumerate(sorted(seeded.departments.items()), start=1):
        if code in dict(GROUPS):
            continue
        await person(
            f"handler-{code.lower()}",
            handler_name(index),
            ["handler"],
            {
                "code": f"E1{index:03d}",
                "department_id": department_id,
                "title": "科室联络员",
                "is_handler": True,
            },
        )


async def _codes(session: AsyncSession, kind: directory.Kind) -> dict[str, int]:
    return {row.code: row.id for row in await directory.list_entities(session, kind=kind)}


async def load_demo(session: AsyncSession, settings: Settings) -> str:
    """Caller owns the transaction. Each part loads once: a demo made by an earlier version gains
    what is new."""
    if await directory.find_by_code(session, kind=directory.SITES, code="MAIN") is None:
        seeded = await _directory(session)
        await _people(session, settings, seeded)
        hospital = f"loaded demo hospital {HOSPITAL}: {len(seeded.departments)} departments"
    else:
        hospital = "demo hospital already loaded"
    knowledge = await load_demo_knowledge(
        session,
        settings=settings,
        departments=await _codes(session, directory.DEPARTMENTS),
        sites=await _codes(session, directory.SITES),
    )
    channels = await load_demo_channels(session)
    workorders = await load_demo_workorders(session)
    routing = await load_demo_routing(session)
    patients = await load_demo_patients(session)
    contacts = await load_demo_contacts(session)
    voice = await load_demo_voice(session, settings, DEMO_PASSWORD)
    return (f"{hospital}; {knowledge}; {channels}; {workorders}; {routing}; {patients}; {contacts}; {voice}; "
            f"password {DEMO_PASSWORD}")  # fmt: skip


async def seed(settings: Settings) -> str:
    db = Database(settings.effective_database_url)
    try:
        async with db.sessions() as session, session.begin():
            return await load_demo(session, settings)
    finally:
        await db.dispose()


DEMO_LOGINS = [
    ("admin", "administrator"),
    ("supervisor1", "supervisor"),
    ("agent01", "agent"),
    ("handler-xnk", "department handler (心内科)"),
]
