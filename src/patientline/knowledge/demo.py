"""The demo hospital's knowledge base: the category tree, a few hundred published items with their
representative questions (demo_content/, written for the fictional hospital), some synonyms, a few
candidates waiting for an editor, clinic timetables and a quiz. Loading twice changes nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from patientline.core.auth.actor import Actor
from patientline.core.auth.permissions import Role, permissions_for
from patientline.core.config import Settings
from patientline.knowledge import candidates, service
from patientline.knowledge.models import Category
from patientline.knowledge.schemas import CategoryCreate, ItemCreate

CONTENT = Path(__file__).resolve().parent / "demo_content"
EDITOR = Actor(
    user_id=None,
    username="demo",
    display_name="Demo content",
    roles=(Role.ADMIN.value,),
    permissions=permissions_for([Role.ADMIN.value]),
    via="system",
)
SYNONYMS = [
    (["8585", "服务热线", "客服电话", "热线电话"], "the hotline's names"),
    (["陪护证", "陪护卡", "陪床证"], "caregiver pass"),
    (["一卡通", "就诊卡", "诊疗卡"], "the hospital card"),
]
CANDIDATES = [
    ("你们医院晚上有没有人看急诊", 4),
    ("孩子打疫苗要带什么本子", 3),
    ("住院的时候能不能点外卖", 2),
    ("做完胃镜多久能吃饭", 2),
    ("挂了号没去还能退钱吗", 1),
]


async def _categories(session: AsyncSession) -> dict[str, int]:
    ids: dict[str, int] = {}

    async def add(node: dict[str, Any], parent_id: int | None, position: int) -> None:
        values = CategoryCreate(code=node["code"], name=node["name"], parent_id=parent_id, position=position)
        row = await service.create_category(session, actor=EDITOR, values=values.model_dump())
        ids[node["code"]] = row.id
        for index, child in enumerate(node.get("children", [])):
            await add(child, row.id, index)

    tree = json.loads((CONTENT / "categories.json").read_text(encoding="utf-8"))
    for index, node in enumerate(tree):
        await add(node, None, index)
    return ids


def _item_values(raw: dict[str, Any], *, categories: dict[str, int], departments: dict[str, int],
                 sites: dict[str, int]) -> ItemCreate:  # fmt: skip
    return ItemCreate(
        key=raw["key"],
        category_id=categories[raw["category"]],
        question=raw["question"],
        answer_html=raw.get("answer", ""),
        spoken=raw.get("spoken", ""),
        tags=raw.get("tags", []),
        department_ids=[departments[c] for c in raw.get("departments", []) if c in departments],
        site_ids=[sites[c] for c in raw.get("sites", []) if c in sites],
        public=raw.get("public", True),
        valid_from=date.fromisoformat(raw["valid_from"]) if raw.get("valid_from") else None,
        valid_to=date.fromisoformat(raw["valid_to"]) if raw.get("valid_to") else None,
        owner_department_id=departments.get(raw.get("owner", "")),
        variants=raw.get("variants", []),
    )


async def _items(session: AsyncSession, *, categories: dict[str, int], departments: dict[str, int],
                 sites: dict[str, int]) -> int:  # fmt: skip
    count = 0
    for line in (CONTENT / "items.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        values = _item_values(json.loads(line), categories=categories, departments=departments, sites=sites)
        row = await service.create_item(
            session, actor=EDITOR, values=values.model_dump(exclude={"variants", "note"}), variants=values.variants
        )
        await service.publish_now(session, actor=EDITOR, item_id=row.id, note="demo")
        count += 1
    return count


async def _extras(session: AsyncSession) -> None:
    for terms, note in SYNONYMS:
        await service.create_synonyms(session, actor=EDITOR, values={"terms": terms, "note": note, "is_active": True})
    for text, times in CANDIDATES:
        for _ in range(times):
            await candidates.suggest(session, actor=EDITOR, text=text, source="agent", context="demo")


async def load_demo_knowledge(
    session: AsyncSession, *, settings: Settings, departments: dict[str, int], sites: dict[str, int]
) -> str:
    """Caller owns the transaction."""
    from patientline.knowledge.quiz_demo import load_demo_quizzes
    from patientline.knowledge.timetable_demo import load_demo_timetables

    if await session.scalar(select(func.count()).select_from(Category)):
        return "demo knowledge base already loaded"
    categories = await _categories(session)
    count = await _items(session, categories=categories, departments=departments, sites=sites)
    await _extras(session)
    await load_demo_timetables(session, departments=departments, sites=sites)
    await load_demo_quizzes(session, settings=settings)
    return f"knowledge base: {len(categories)} categories, {count} published items"
