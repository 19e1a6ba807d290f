"""Demo work orders: the ten types of the seed hotlines with their forms and policies, department
contacts, and orders in every state — some overdue and escalated, one paused, one waiting for an
extension decision, callbacks due. Made-up people and numbers only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core import clock
from patientline.core.auth import service as auth
from patientline.core.auth.actor import Actor
from patientline.core.auth.models import User
from patientline.core.auth.permissions import Role, permissions_for
from patientline.directory.models import Department
from patientline.workorders import config, followup, scheduled, service
from patientline.workorders.models import CallOutcome, WorkOrder
from patientline.workorders.schemas import DepartmentContactIn, OrderCreate, TypeCreate

ADMIN = Actor(user_id=None, username="demo", display_name="Demo", roles=(Role.ADMIN.value,),
              permissions=permissions_for([Role.ADMIN.value]), via="system")  # fmt: skip

VISIT = {"key": "visit_date", "label": "就诊日期", "kind": "date"}
COMPLAINT_SMS = {"received": "wo_received", "resolved": "wo_resolved"}
SERVICE_POLICY = {"reply": None, "result": {"amount": 2, "unit": "working_days"}, "auto_close_days": 3}

# code, name, group, default department, categories, fields, policy, sms templates
TYPES: list[tuple[str, str, str, str | None, list[str], list[dict[str, Any]], dict[str, Any], dict[str, str]]] = [
    ("callback", "回电咨询", "callback", None, ["挂号预约", "检查检验", "医保报销", "住院事务", "其他"], [],
     {"reply": None, "result": {"amount": 8, "unit": "working_hours"}, "call_back_on_reply": True}, {}),
    ("complaint", "投诉", "complaint", "YWC", ["服务态度", "医疗质量", "收费问题", "就医流程", "环境设施", "其他"],
     [VISIT | {"required": True}, {"key": "person", "label": "涉及人员", "kind": "text", "max_length": 50},
      {"key": "expectation", "label": "患者诉求", "kind": "textarea", "max_length": 500}], {}, COMPLAINT_SMS),
    ("dispute", "医疗纠纷", "complaint", "YWC", ["诊疗争议", "费用争议", "其他"],
     [VISIT | {"required": True}, {"key": "amount", "label": "涉及金额（元）", "kind": "number", "minimum": 0}],
     {}, COMPLAINT_SMS),
    ("suggestion", "建议", "feedback", "HZFW", ["就医流程", "环境设施", "信息化", "其他"], [],
     {"reply": None, "result": {"amount": 10, "unit": "working_days"}}, {}),
    ("praise", "表扬", "feedback", "HZFW", ["医生", "护士", "窗口", "其他"],
     [{"key": "person", "label": "表扬对象", "kind": "text", "required": True}],
     {"reply": None, "result": {"amount": 5, "unit": "working_days"}}, {}),
    ("report", "举报", "complaint", "YWC", ["红包回扣", "号贩子", "其他"], [], {}, {}),
    ("equipment", "器械租赁", "service", "HLB", ["轮椅", "拐杖", "制氧机", "其他"],
     [{"key": "days", "label": "租用天数", "kind": "number", "minimum": 1, "maximum": 90, "required": True}],
     SERVICE_POLICY, {}),
    ("family_doctor", "家庭医生签约", "service", "MZB", [], [{"key": "address", "label": "居住地址", "kind": "text"}],
     {"reply": None, "result": {"amount": 5, "unit": "working_days"}}, {}),
    ("caregiver", "护工预约", "service", "HLB", ["全天", "白天", "夜间"],
     [{"key": "ward", "label": "病区床号", "kind": "text", "required": True}],
     {"reply": {"amount": 4, "unit": "hours"}, "result": {"amount": 24, "unit": "hours"}}, {}),
    ("meals", "营养餐预订", "service", "HLB", ["普通餐", "糖尿病餐", "流质"],
     [{"key": "ward", "label": "病区床号", "kind": "text", "required": True}],
     {"reply": None, "result": {"amount": 4, "unit": "hours"}}, {}),
]  # fmt: skip

# type, category, subject, department, caller, phone, values, days ago, what happens next
ORDERS: list[tuple[str, str, str, str, str, str, dict[str, Any], float, str]] = [
    ("complaint", "服务态度", "挂号窗口态度生硬", "MZB", "张先生", "13800138001", {"visit_date": "2026-11-16"}, 8, "closed"),
    ("complaint", "收费问题", "检查费用重复收取", "YBB", "李女士", "13800138002", {"visit_date": "2026-11-18"}, 6, "resolved"),
    ("complaint", "医疗质量", "术后复查未被告知注意事项", "GK", "王先生", "13800138003", {"visit_date": "2026-11-10"}, 9, "overdue"),
    ("complaint", "就医流程", "夜间急诊候诊时间过长", "JZK", "赵女士", "13800138004", {"visit_date": "2026-11-20"}, 3, "replied"),
    ("complaint", "服务态度", "病房护士未及时回应呼叫", "XNK", "刘先生", "13800138005", {"visit_date": "2026-11-21"}, 1.6, "accepted"),
    ("complaint", "环境设施", "门诊卫生间无纸", "MZB", "陈女士", "13800138006", {"visit_date": "2026-11-22"}, 0.2, "dispatched"),
    ("dispute", "费用争议", "住院费用清单有疑问", "YWC", "周先生", "13800138007", {"visit_date": "2026-11-02", "amount": 3200}, 4, "paused"),
    ("dispute", "诊疗争议", "对诊断结果有异议", "YWC", "吴女士", "13800138008", {"visit_date": "2026-11-12"}, 2, "extension"),
    ("callback", "检查检验", "胃镜检查是否需要空腹", "XHNK", "郑女士", "13900139001", {}, 0.3, "callback_due"),
    ("callback", "医保报销", "异地医保能否直接结算", "YBB", "孙先生", "13900139002", {}, 0.1, "dispatched"),
    ("callback", "挂号预约", "心内科专家号何时放号", "XNK", "钱女士", "13900139003", {}, 1.2, "callback_missed"),
    ("suggestion", "信息化", "希望公众号能查询排队进度", "HZFW", "冯先生", "13700137001", {}, 5, "accepted"),
    ("praise", "护士", "感谢心内科护士细心照护", "XNK", "褚女士", "13700137002", {"person": "心内科护理组"}, 2, "resolved"),
    ("report", "号贩子", "门诊大厅有人倒卖专家号", "YWC", "匿名", "", {}, 0.5, "dispatched"),
    ("equipment", "轮椅", "出院后租用轮椅两周", "HLB", "卫先生", "13600136001", {"days": 14}, 0.8, "accepted"),
    ("caregiver", "全天", "骨科病房需要全天护工", "HLB", "蒋女士", "13600136002", {"ward": "骨科 12 床"}, 0.1, "new"),
]  # fmt: skip


async def _actor(session: AsyncSession, username: str) -> Actor:
    user = await session.scalar(select(User).where(User.username == username))
    return await auth.actor_for(session, user=user) if user is not None else ADMIN


async def _types(session: AsyncSession, departments: dict[str, int]) -> dict[str, int]:
    ids = {}
    for position, (code, name, group, department, categories, fields, policy, sms) in enumerate(TYPES):
        data = TypeCreate.model_validate({
            "code": code, "name": name, "group": group, "categories": categories, "fields": fields,
            "default_department_id": departments.get(department or ""), "policy": policy, "sms_templates": sms,
            "position": position,
        })  # fmt: skip
        ids[code] = (await config.create_type(session, actor=ADMIN, data=data)).id
    return ids


async def _contacts(session: AsyncSession, departments: dict[str, int]) -> None:
    for code, phone, email in (("XNK", "13911110001", "xnk@example.org"), ("YWC", "13911110002", "ywc@example.org")):
        data = DepartmentContactIn(sms_phone=phone, email=email)
        await config.set_department_contact(session, actor=ADMIN, department_id=departments[code], data=data)


async def _advance(session: AsyncSession, order: WorkOrder, outcome: str, *, agent: Actor, handler: Actor) -> None:
    """Takes a fresh order to the state the demo shows, as the people involved would."""
    steps = {
        "accepted": ["accept"], "replied": ["accept", "reply"], "resolved": ["accept", "reply", "resolve"],
        "closed": ["accept", "reply", "resolve", "evaluate"], "paused": ["accept", "pause"],
        "extension": ["accept", "extension"], "callback_due": ["accept", "reply"],
        "callback_missed": ["accept", "reply", "missed"],
    }.get(outcome, [])  # fmt: skip
    for name in steps:
        order_id, version = order.id, order.version
        if name == "accept":
            await service.accept(session, actor=handler, order_id=order_id, expected_version=version)
        elif name == "reply":
            await service.reply(session, actor=handler, order_id=order_id, expected_version=version,
                                text="已核实情况，科室将按规定处理并电话告知结果。")  # fmt: skip
        elif name == "resolve":
            await service.resolve(session, actor=handler, order_id=order_id, expected_version=version,
                                  text="已与患者沟通并致歉，相关人员已批评教育。")  # fmt: skip
        elif name == "evaluate":
            await service.evaluate(session, actor=agent, order_id=order_id, expected_version=version,
                                   satisfied=True, comment="患者表示满意")  # fmt: skip
        elif name == "pause":
            await followup.pause(session, actor=handler, order_id=order_id, expected_version=version,
                                 reason="等待患者补充住院费用票据")  # fmt: skip
        elif name == "extension":
            await followup.request_extension(session, actor=handler, order_id=order_id, expected_version=version,
                                             amount=3, reason="需调取病历并组织专家讨论")  # fmt: skip
        elif name == "missed":
            await followup.record_attempt(session, actor=agent, order_id=order_id, outcome=CallOutcome.NO_ANSWER,
                                          note="无人接听")  # fmt: skip


async def _orders(session: AsyncSession, types: dict[str, int], departments: dict[str, int]) -> None:
    agent = await _actor(session, "agent01")
    now, fixed = clock.now(), clock.frozen()
    try:
        for index, (kind, category, subject, department, caller, phone, values, days_ago, outcome) in enumerate(ORDERS):
            clock.set_now(now - timedelta(days=days_ago))
            data = OrderCreate.model_validate({
                "type_id": types[kind], "category": category, "subject": subject, "values": values,
                "description": f"来电人反映：{subject}。", "caller_name": caller, "caller_phone": phone or None,
                "department_id": None if outcome == "new" else departments[department],
                "client_key": f"demo-order-{index:03d}",
            })  # fmt: skip
            order = await service.create(session, actor=agent, data=data)
            clock.set_now(now - timedelta(days=days_ago * 0.7))
            handler = await _actor(session, f"handler-{department.lower()}")
            await _advance(session, order, outcome, agent=agent, handler=handler)
    finally:
        clock.set_now(fixed)
    await scheduled.sweep(session)  # the overdue ones are escalated as the worker would have


async def load_demo_workorders(session: AsyncSession) -> str:
    """Caller owns the transaction; loads once."""
    if await config.find_type(session, "complaint") is not None:
        return "work orders already loaded"
    departments = {row.code: row.id for row in await session.scalars(select(Department))}
    types = await _types(session, departments)
    await _contacts(session, departments)
    await _orders(session, types, departments)
    count = await session.scalar(select(func.count()).select_from(WorkOrder))
    return f"{len(types)} work-order types, {count} work orders"
