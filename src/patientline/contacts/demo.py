"""Demo contact records: the disposition tree of a hospital hotline, two weeks of made-up contacts of
the demo agents on every channel (coded and closed, a few still open today; some from demo patients,
verified, when the patients' demo is loaded first), and shift handovers —
the last one not acknowledged yet, with pending items. Made-up people and numbers only."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.contacts import dispositions, handover, service
from patientline.contacts.models import Contact
from patientline.contacts.schemas import ContactCreate, DispositionCreate, HandoverCreate
from patientline.core import clock
from patientline.core.auth import service as auth
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Role, permissions_for
from patientline.core.config import get_settings
from patientline.patients import index as patient_index
from patientline.patients.models import Patient
from patientline.routing import service as routing

ADMIN = Actor(user_id=None, username="demo", display_name="Demo", roles=(Role.ADMIN.value,),
              permissions=permissions_for([Role.ADMIN.value]), via="system")  # fmt: skip

# code, name, children (code, name, grandchildren)
TREE: list[tuple[str, str, list[tuple[str, str, list[tuple[str, str]]]]]] = [
    ("consult", "咨询", [
        ("consult.registration", "挂号预约", []),
        ("consult.hours", "门诊时间", []),
        ("consult.tests", "检查检验", [("consult.tests.prep", "检查准备"), ("consult.tests.results", "报告查询")]),
        ("consult.inpatient", "住院", [("consult.inpatient.admission", "入院办理"), ("consult.inpatient.visit", "探视陪护")]),
        ("consult.insurance", "医保", [("consult.insurance.remote", "异地就医结算"), ("consult.insurance.claims", "报销比例")]),
        ("consult.fees", "费用", []),
        ("consult.expert", "科室与专家", []),
        ("consult.directions", "就医指引与交通", []),
    ]),
    ("complaint", "投诉", [
        ("complaint.attitude", "服务态度", []),
        ("complaint.quality", "医疗质量", []),
        ("complaint.fees", "收费问题", []),
        ("complaint.process", "就医流程", []),
    ]),
    ("booking", "预约", [
        ("booking.new", "新预约", []),
        ("booking.change", "改约", []),
        ("booking.cancel", "取消预约", []),
    ]),
    ("callback", "回电", [
        ("callback.reached", "已接通", []),
        ("callback.no_answer", "无人接听", []),
        ("callback.voicemail", "语音信箱", []),
        ("callback.wrong_number", "号码错误", []),
    ]),
    ("praise", "表扬", []),
    ("suggestion", "建议", []),
    ("wrong_number", "打错电话", []),
    ("silent", "无声电话", []),
    ("harassment", "骚扰电话", []),
]  # fmt: skip

# what callers ask, with the code an agent gives it; weights make consultations the bulk
TOPICS: list[tuple[str, str, int]] = [
    ("心内科专家号什么时候放号", "consult.registration", 9),
    ("周六上午有没有儿科门诊", "consult.hours", 7),
    ("胃镜检查前需要空腹多久", "consult.tests.prep", 6),
    ("血常规报告出来了吗", "consult.tests.results", 6),
    ("住院需要带哪些材料", "consult.inpatient.admission", 4),
    ("病房探视时间", "consult.inpatient.visit", 3),
    ("异地医保能否直接结算", "consult.insurance.remote", 5),
    ("门诊慢病报销比例", "consult.insurance.claims", 3),
    ("核磁共振检查多少钱", "consult.fees", 3),
    ("哪位医生看甲状腺结节", "consult.expert", 4),
    ("东院区怎么坐地铁", "consult.directions", 3),
    ("挂号窗口态度生硬", "complaint.attitude", 2),
    ("检查费用重复收取", "complaint.fees", 1),
    ("候诊时间太长", "complaint.process", 2),
    ("预约下周三复诊", "booking.new", 4),
    ("复诊改到下午", "booking.change", 2),
    ("取消明天的预约", "booking.cancel", 2),
    ("感谢护士细心照顾", "praise", 1),
    ("希望增加自助机", "suggestion", 1),
    ("", "wrong_number", 1),
    ("", "silent", 2),
]
CHANNELS = [("voice", 60), ("chat", 18), ("wechat", 10), ("walk_in", 5), ("sms", 4), ("email", 3)]
SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何高林罗"
GIVEN = ["先生", "女士", "阿姨", "大爷", "同学"]
NOTES = ["已告知", "已解答，患者表示清楚", "已发送短信指引", "建议到服务台咨询", "已转相关科室", ""]
DAYS = 14
PER_DAY = (8, 14)

# the three shifts before the current one, the oldest first: notes, pending items, acknowledged
HANDOVERS = [
    ("3 号中继线故障约 20 分钟，已报信息科修复。", ["回电张先生：胃镜预约改期结果"], True),
    ("医保政策有调整，知识库“异地就医结算”已更新，请接班同事先阅读。",
     ["核对新版医保报销比例话术", "跟进投诉工单的科室回复"], True),
    ("急诊咨询较多；一位来电人情绪激动，已按流程安抚并上报班长。",
     ["回电李女士：住院床位安排", "检查 12 号坐席耳麦", "提醒下一班：周六专家门诊停诊通知"], False),
]  # fmt: skip


async def _actors(session: AsyncSession, prefix: str) -> list[Actor]:
    users = await session.scalars(select(User).where(User.username.startswith(prefix)).order_by(User.username))
    return [await auth.actor_for(session, user=user) for user in users]


async def _tree(session: AsyncSession) -> dict[str, int]:
    ids: dict[str, int] = {}

    async def add(code: str, name: str, parent: str | None) -> None:
        data = DispositionCreate(code=code, name=name, parent_id=ids[parent] if parent else None)
        ids[code] = (await dispositions.create_code(session, actor=ADMIN, data=data)).id

    for code, name, children in TREE:
        await add(code, name, None)
        for child, child_name, grandchildren in children:
            await add(child, child_name, code)
            for grandchild, grandchild_name in grandchildren:
                await add(grandchild, grandchild_name, child)
    return ids


def _local_day_start(days_ago: int) -> datetime:
    zone = ZoneInfo(get_settings().timezone)
    today = clock.now().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


async def _callers(session: AsyncSession) -> list[tuple[int, str, str]]:
    """Some of the demo patients (id, name, phone), so the workbench shows their past contacts."""
    rows = list(await session.execute(select(Patient.id, Patient.name).where(Patient.merged_into_id.is_(None))
                                      .order_by(Patient.id).limit(40)))  # fmt: skip
    phones = await patient_index.phones_of(session, [row[0] for row in rows])
    return [(pid, name, phones[pid][0].phone) for pid, name in rows if phones.get(pid)]


async def _contacts(session: AsyncSession, codes: dict[str, int], agents: list[Actor]) -> int:
    rng = random.Random(20261122)  # noqa: S311 - made-up demo data
    queues = [row.id for row in await routing.list_queues(session)]
    patients = await _callers(session)
    topics = [topic for topic in TOPICS for _ in range(topic[2])]
    channels = [name for name, weight in CHANNELS for _ in range(weight)]
    now, fixed = clock.now(), clock.frozen()
    count = 0
    try:
        for days_ago in range(DAYS, -1, -1):
            start = _local_day_start(days_ago)
            for _ in range(rng.randint(*PER_DAY)):
                moment = start + timedelta(hours=8, minutes=rng.randint(0, 12 * 60 - 1), seconds=rng.randint(0, 59))
                if moment >= now - timedelta(minutes=5):
                    continue
                subject, code, _weight = rng.choice(topics)
                channel = rng.choice(channels)
                agent = rng.choice(agents)
                clock.set_now(moment)
                phone = f"1{rng.choice(('380013', '390013', '860013'))}{rng.randint(0, 9999):04d}"
                data = ContactCreate.model_validate({
                    "channel": channel, "phone": None if channel in ("walk_in", "email") else phone,
                    "caller_name": rng.choice(SURNAMES) + rng.choice(GIVEN) if subject else "",
                    "subject": subject, "notes": rng.choice(NOTES) if subject else "",
                    "queue_id": rng.choice(queues) if queues and channel in ("voice", "chat", "wechat") else None,
                })  # fmt: skip
                if patients and subject and channel in ("voice", "wechat") and rng.random() < 0.4:
                    patient_id, name, number = rng.choice(patients)  # a known patient called and was verified
                    data = data.model_copy(update={"patient_id": patient_id, "verified_by": "birth_date",
                                                   "caller_name": name, "phone": number})  # fmt: skip
                contact = await service.create(session, actor=agent, data=data)
                count += 1
                if days_ago == 0 and rng.random() < 0.3:
                    continue  # still being handled today
                clock.set_now(moment + timedelta(seconds=rng.randint(60, 600)))
                await service.close(session, actor=agent, contact_id=contact.id, expected_version=contact.version,
                                    disposition_ids=[codes[code]])  # fmt: skip
    finally:
        clock.set_now(fixed)
    return count


async def _handovers(session: AsyncSession, supervisors: list[Actor], agents: list[Actor]) -> None:
    shift_date, shift = handover.current_shift()
    order = ["day", "evening", "night"]
    for steps_back, (notes, items, acknowledged) in enumerate(reversed(HANDOVERS)):
        index = order.index(shift) - 1 - steps_back  # counting back from the shift before the current one
        data = HandoverCreate.model_validate({
            "shift_date": shift_date + timedelta(days=index // 3), "shift": order[index % 3], "notes": notes,
            "items": items,
        })  # fmt: skip
        author = supervisors[steps_back % len(supervisors)] if supervisors else agents[0]
        written = await handover.write(session, actor=author, data=data)
        reader = agents[(steps_back + 1) % len(agents)]
        if acknowledged and reader.user_id != author.user_id:
            await handover.acknowledge(session, actor=reader, handover_id=written.row.id,
                                       expected_version=written.row.version)  # fmt: skip
            await handover.set_item_done(session, actor=reader, handover_id=written.row.id,
                                         item_id=written.items[0].id)  # fmt: skip


async def load_demo_contacts(session: AsyncSession) -> str:
    """Caller owns the transaction; loads once (after the demo hospital's people and queues)."""
    if await dispositions.find_code(session, "consult") is not None:
        return "contacts already loaded"
    codes = await _tree(session)
    agents = await _actors(session, "agent") or [ADMIN]
    supervisors = await _actors(session, "supervisor")
    made = await _contacts(session, codes, agents)
    await _handovers(session, supervisors, agents)
    total = await session.scalar(select(func.count()).select_from(Contact))
    return f"{len(codes)} disposition codes, {made} demo contacts ({total} in all), 3 shift handovers"
