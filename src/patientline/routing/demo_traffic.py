"""Made-up callers for the demo hospital, so that in `make run` the agent bar rings and the wallboard
moves (`PATIENTLINE_DEMO_TRAFFIC=1`; off by default). Every little while a caller joins an open queue
that has few waiting, and one who has waited too long hangs up; whoever is logged in as an agent
answers the rest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

from patientline.core import clock
from patientline.core.errors import DomainError
from patientline.routing.engine import Engine
from patientline.routing.models import TaskState
from patientline.routing.schemas import Caller, TaskCreate

log = logging.getLogger(__name__)

REF_PREFIX = "demo-"
SUBJECTS = (
    "挂号：心内科专家号还有吗",
    "检查报告什么时候能取",
    "复诊预约改时间",
    "医保报销比例咨询",
    "投诉：候诊时间太长",
    "住院押金怎么交",
    "儿科周末有门诊吗",
    "停车场在哪里",
)
STRANGERS = (("周先生", "+8615900006666"), ("孙女士", "+8613600005555"))  # numbers nobody in the index has


@cache
def demo_callers() -> tuple[tuple[str, str], ...]:
    """Who rings: families sharing a mobile, the VIP, the flagged caller, people registered by phone, and
    strangers — so the screen pop shows each case the workbench handles."""
    from patientline.patients.demo import ABUSIVE, PROSPECTIVE, VIP
    from patientline.patients.simulator import population

    people = population()
    families = {p.family: p.record for p in people if p.family is not None}
    chosen = [*list(families.values())[:3], people[VIP].record, people[ABUSIVE].record]
    known = tuple((_addressed(r.name, r.sex), r.phones[0]) for r in chosen)
    registered = tuple((_addressed(name, sex), phone) for name, sex, _, phone in PROSPECTIVE[:2])
    return known + registered + STRANGERS


def _addressed(name: str, sex: str) -> str:
    return name[0] + ("先生" if sex == "male" else "女士")


@dataclass(frozen=True)
class DemoTraffic:
    engine: Engine
    every_s: float = 20.0
    max_waiting: int = 3  # per queue: with nobody answering, the demo stays small
    patience_s: float = 240.0
    chat_share: float = 0.3
    rng: random.Random = field(default_factory=lambda: random.Random(8585))  # noqa: S311 - made-up callers

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("demo traffic step failed")
            await asyncio.sleep(self.every_s)

    async def step(self) -> None:
        """One caller who waited too long hangs up; one new caller joins a queue that has room."""
        if not self.engine.leading:
            return
        await self._hang_up_the_impatient()
        await self._call()

    def _waiting(self) -> list[tuple[int, int, float]]:
        """(task, queue, seconds waited) of the demo's callers still waiting."""
        now = clock.now()
        return [
            (task.id, task.queue_id, (now - task.entered_at).total_seconds())
            for task in self.engine.tasks.values()
            if task.state == TaskState.WAITING and (task.external_ref or "").startswith(REF_PREFIX)
        ]

    async def _hang_up_the_impatient(self) -> None:
        for task_id, _, waited in self._waiting():
            if waited > self.patience_s:
                with contextlib.suppress(DomainError):
                    await self.engine.abandon(task_id)

    async def _call(self) -> None:
        waiting = Counter(queue_id for _, queue_id, _ in self._waiting())
        roomy = sorted(q.id for q in self.engine.queues.values() if q.is_active and waiting[q.id] < self.max_waiting)
        self.rng.shuffle(roomy)
        name, phone = self.rng.choice(demo_callers())
        subject = self.rng.choice(SUBJECTS)
        channel = "chat" if self.rng.random() < self.chat_share else "voice"
        for queue_id in roomy:
            task = TaskCreate(queue_id=queue_id, channel=channel, caller=Caller(name=name, phone=phone),
                              subject=subject, external_ref=f"{REF_PREFIX}{uuid.uuid4().hex[:12]}")  # fmt: skip
            with contextlib.suppress(DomainError):  # a queue outside its hours: the caller tries another
                await self.engine.submit(task)
                return
