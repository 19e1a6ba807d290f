"""The demo hospital's SMS templates: what work orders tell patients and departments, and the notice that a
result is ready (patients/results.py; it never says what the result is). Loading twice
changes nothing (templates that exist are kept as they are)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from patientline.channels import sms_templates
from patientline.channels.schemas import TemplateCreate
from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Role, permissions_for

EDITOR = Actor(
    user_id=None,
    username="demo",
    display_name="Demo content",
    roles=(Role.ADMIN.value,),
    permissions=permissions_for([Role.ADMIN.value]),
    via="system",
)

# code -> (name, audience, body); the provider's template codes are made up (SMS_48000n)
TEMPLATES = {
    "wo_received": ("受理通知", "patient", "您的{type}已受理，编号{reference}，我们将在{deadline}前答复。"),
    "wo_replied": (
        "答复通知",
        "patient",
        "您的{type}（编号{reference}）已有答复：{summary}。如有疑问请致电{hotline}。",
    ),
    "wo_resolved": ("办结通知", "patient", "您的{type}（编号{reference}）已办结，感谢您的耐心。"),
    "wo_evaluate": (
        "满意度评价",
        "patient",
        "您的{type}（编号{reference}）已办结，请回复1-5为本次服务评分（5为非常满意）。",
    ),
    "wo_callback_missed": (
        "回电未接通",
        "patient",
        "我们就编号{reference}的{type}给您回电未能接通，将于{next_try}再次联系您，也可致电{hotline}。",
    ),
    "result_ready": (
        "报告已出通知",
        "patient",
        "您的{kind}报告（单号{order_number}）已出，请凭就诊卡到自助机打印或在医院APP查看。",
    ),
    "chat_code": ("在线咨询验证码", "code", "您的验证码为{code}，{minutes}分钟内有效。如非本人操作请忽略。"),
    "dept_new_order": ("科室新工单", "staff", "{department}：新{type}工单{reference}待处理，请于{deadline}前答复。"),
    "dept_escalation": (
        "工单督办",
        "staff",
        "{department}：工单{reference}已超时{overdue}，已升级至{level}，请尽快处理。",
    ),
    "line_alarm": ("热线自检告警", "staff", "{hotline}热线自检失败（{time}）：{problem}。请尽快检查线路。"),
}


async def load_demo_channels(session: AsyncSession) -> str:
    """Caller owns the transaction."""
    added = 0
    for number, (code, (name, audience, body)) in enumerate(TEMPLATES.items(), start=1):
        if await sms_templates.find_template(session, code=code) is not None:
            continue
        values = TemplateCreate(
            code=code,
            name=name,
            body=body,
            variables=sms_templates.placeholders(body),
            provider_template_code=f"SMS_48000{number}",
            audience=audience,
        )
        await sms_templates.create_template(session, actor=EDITOR, values=values.model_dump())
        added += 1
    return f"{added} SMS templates" if added else "SMS templates already loaded"
