"""Routing benchmark: the router core at contact-centre scale.

    .venv/bin/python bench/routing.py                  # every part; exit 1 when a target is missed
    .venv/bin/python bench/routing.py --parts core --cycles 50000

Part `core` (in process, one core, no I/O): 1,000 agents and 20 queues with mixed skills, tiers,
strategies, priorities, aging and widening; 16 "busy" queues share 10,000 waiting tasks (calls and
chats, some VIP) and 850 agents, every one of them on a task; 4 "quiet" queues have 150 agents of
their own, ready, and nothing waiting. Time moves on as a contact centre's would (one completion
every 1/5.5 s per 1,000 agents with a 180 s handling time), and the router's timers (tiers opening)
are ticked when due.

1. agent freed: a busy agent completes its task; `complete` is timed, the command in which the
   router picks that agent's best task among the 10,000 and offers it (the decision);
2. task submitted: a task arrives in a quiet queue with ready agents; `submit` is timed, the command
   in which the router picks the agent;
3. throughput: complete -> offer -> accept, with a new task submitted to keep 10,000 waiting and the
   due timers ticked, as fast as one core goes: assignments per second.

Parts `sse` and `sse_postgresql` (bench/routing_sse.py): a real server on 127.0.0.1 with 500 agents
connected over SSE; the time from submitting a task to its offer arriving in that agent's stream.

Targets: offer in the stream p99 < 100 ms; routing decision p99 < 2 ms (each of 1 and 2), >= 5,000
assignments/s. The garbage collector stays on (a running router has it on too). Prints the figures
and one JSON line (a dict of parts); exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import routing_sse
from measures import machine, percentile

from patientline.routing.core import (
    AgentProfile,
    Effect,
    Offered,
    QueueConfig,
    Router,
    Strategy,
    TaskSpec,
    WrapUpPolicy,
)

PG = os.environ.get("PATIENTLINE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TARGET_DECISION_P99_MS = 2.0
TARGET_ASSIGNMENTS_PER_S = 5_000.0
SKILLS = ("cardiology", "paediatrics", "oncology", "obstetrics", "pharmacy", "billing", "english", "cantonese")


# ---- part: core ----------------------------------------------------------------------------------


@dataclass
class Centre:
    """A router filled as described in the module's docstring, and the moving parts around it."""

    router: Router
    rng: random.Random
    busy_queues: list[int]
    quiet_queues: list[int]
    now: float = 0.0
    next_task: int = 1
    step_s: float = 180.0 / 1_000

    def offers(self, effects: list[Effect]) -> list[Offered]:
        return [effect for effect in effects if isinstance(effect, Offered)]

    def new_task(self, queues: list[int]) -> TaskSpec:
        self.next_task += 1
        channel = "chat" if self.rng.random() < 0.2 else "voice"
        priority = 5 if self.rng.random() < 0.05 else self.rng.choice((0, 0, 0, 1))
        return TaskSpec(self.next_task, self.rng.choice(queues), channel, priority)

    def tick_if_due(self) -> list[int]:
        due = self.router.next_due()
        return self.accept_all(self.router.tick(self.now)) if due is not None and due <= self.now else []

    def accept_all(self, effects: list[Effect]) -> list[int]:
        """Every offer answered at once (an accepted chat may bring the next offer): the tasks taken."""
        taken = []
        for offer in self.offers(effects):
            taken.append(offer.task)
            taken += self.accept_all(self.router.accept(offer.task, offer.agent, self.now))
        return taken


def queue_configs(rng: random.Random, count: int) -> list[QueueConfig]:
    strategies = list(Strategy)
    return [
        QueueConfig(
            queue_id,
            priority=rng.choice((0, 0, 1, 2)),
            strategy=strategies[queue_id % len(strategies)],
            skill=SKILLS[queue_id % len(SKILLS)],
            widen_after_s=rng.choice(((), (30.0,), (30.0, 90.0), (20.0, 60.0))),
            aging_per_minute=rng.choice((0.0, 0.0, 0.5, 1.0)),
            wrap_up=WrapUpPolicy.NONE,
        )
        for queue_id in range(1, count + 1)
    ]


def agent_profile(rng: random.Random, agent_id: int, queues: list[int]) -> AgentProfile:
    memberships = rng.sample(queues, k=min(len(queues), rng.randint(2, 5)))
    tiers = {queue: (1 if i == 0 else rng.choice((1, 2, 2, 3))) for i, queue in enumerate(memberships)}
    skills = {skill: rng.randint(1, 5) for skill in rng.sample(SKILLS, k=3)}
    capacities = {"voice": 1, "chat": 3} if rng.random() < 0.3 else {"voice": 1}
    return AgentProfile(agent_id, capacities, skills, tiers)


def build_centre(args: argparse.Namespace) -> Centre:
    rng = random.Random(args.seed)
    quiet_count = max(1, args.queues // 5)
    configs = queue_configs(rng, args.queues)
    busy = [cfg.id for cfg in configs[:-quiet_count]]
    quiet = [cfg.id for cfg in configs[-quiet_count:]]
    centre = Centre(Router(), rng, busy, quiet, step_s=args.aht / args.agents)
    router = centre.router
    for cfg in configs:
        router.set_queue(cfg, 0.0)
    quiet_agents = args.agents * 15 // 100
    for agent_id in range(1, args.agents + 1):
        router.login(agent_profile(rng, agent_id, quiet if agent_id <= quiet_agents else busy), 0.0)
    # every busy agent on a task first (their queues' tasks, with no one else ready), then the backlog
    for agent_id in range(quiet_agents + 1, args.agents + 1):
        centre.accept_all(router.ready(agent_id, 0.0))
        queues = [q for q, tier in router.agent(agent_id).profile.queues.items() if tier == 1]
        centre.accept_all(router.submit(TaskSpec(centre.next_task, queues[0], "voice"), 0.0))
        centre.next_task += 1
    for agent_id in range(1, quiet_agents + 1):
        router.ready(agent_id, 0.0)
    for _ in range(args.waiting):
        centre.now += 0.001
        centre.accept_all(router.submit(centre.new_task(busy), centre.now))
    return centre


def waiting(centre: Centre) -> int:
    return sum(centre.router.queue_stats(queue, centre.now).waiting for queue in centre.busy_queues)


def active_tasks(centre: Centre, agents: Sequence[int]) -> list[int]:
    return [task for agent in agents for task in centre.router.agent(agent).active]


def free_busy_agents(centre: Centre, active: list[int], count: int) -> list[float]:
    """Complete busy agents' tasks one at a time; the seconds of each `complete` that made an offer."""
    router, decisions = centre.router, []
    while len(decisions) < count:
        task = active.pop(centre.rng.randrange(len(active)))
        centre.now += centre.step_s
        active += centre.tick_if_due()
        started = time.perf_counter()
        effects = router.complete(task, centre.now)
        elapsed = time.perf_counter() - started
        if centre.offers(effects):
            decisions.append(elapsed)
        active += centre.accept_all(effects)
        active += centre.accept_all(router.submit(centre.new_task(centre.busy_queues), centre.now))
    return decisions


def submit_to_quiet_queues(centre: Centre, count: int) -> list[float]:
    """Tasks arriving where agents are ready; the seconds of each `submit` that made an offer. The task
    is taken and done at once, so the agents are ready again for the next one."""
    router, decisions = centre.router, []
    while len(decisions) < count:
        centre.now += centre.step_s
        taken = centre.tick_if_due()
        spec = centre.new_task(centre.quiet_queues)
        started = time.perf_counter()
        effects = router.submit(spec, centre.now)
        elapsed = time.perf_counter() - started
        if centre.offers(effects):
            decisions.append(elapsed)
        taken += centre.accept_all(effects)
        while taken:
            taken += centre.accept_all(router.complete(taken.pop(), centre.now))
    return decisions


def throughput(centre: Centre, active: list[int], cycles: int) -> tuple[float, float]:
    """Assignments per second: complete -> offer -> accept, a new task in, due timers ticked."""
    router, assigned = centre.router, 0
    started = time.perf_counter()
    while assigned < cycles:
        task = active.pop(centre.rng.randrange(len(active)))
        centre.now += centre.step_s
        taken = centre.tick_if_due()
        taken += centre.accept_all(router.complete(task, centre.now))
        taken += centre.accept_all(router.submit(centre.new_task(centre.busy_queues), centre.now))
        assigned += len(taken)
        active += taken
    elapsed = time.perf_counter() - started
    return assigned / elapsed, elapsed


def latency_figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 50) * 1000, 4),
        "p99_ms": round(percentile(ordered, 99) * 1000, 4),
        "max_ms": round(ordered[-1] * 1000, 4),
    }


def run_core(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    centre = build_centre(args)
    quiet_agents = args.agents * 15 // 100
    build_s = time.perf_counter() - started
    waiting_at_start = waiting(centre)
    active = active_tasks(centre, range(quiet_agents + 1, args.agents + 1))
    freed = free_busy_agents(centre, active, args.decisions)
    submitted = submit_to_quiet_queues(centre, args.decisions)
    rate, elapsed = throughput(centre, active, args.cycles)
    figures: dict[str, Any] = {
        "agents": args.agents,
        "queues": args.queues,
        "waiting": waiting_at_start,
        "waiting_at_end": waiting(centre),
        "build_s": round(build_s, 2),
        "agent_freed": latency_figures(freed),
        "task_submitted": latency_figures(submitted),
        "decision": latency_figures(freed + submitted),
        "assignments_per_s": round(rate),
        "throughput_cycles": args.cycles,
        "throughput_s": round(elapsed, 2),
        "targets": {"decision_p99_ms": TARGET_DECISION_P99_MS, "assignments_per_s": TARGET_ASSIGNMENTS_PER_S},
    }
    figures["missed"] = [
        f"core: {name} p99 {figures[name]['p99_ms']} ms >= {TARGET_DECISION_P99_MS} ms"
        for name in ("agent_freed", "task_submitted")
        if figures[name]["p99_ms"] >= TARGET_DECISION_P99_MS
    ]
    if rate < TARGET_ASSIGNMENTS_PER_S:
        figures["missed"].append(f"core: {rate:.0f} assignments/s < {TARGET_ASSIGNMENTS_PER_S:.0f}")
    return figures


def print_core(figures: dict[str, Any]) -> None:
    print(f"router core: {figures['agents']} agents, {figures['queues']} queues, {figures['waiting']:,} waiting "
          f"({figures['waiting_at_end']:,} at the end; built in {figures['build_s']} s)")  # fmt: skip
    for name, label in (("agent_freed", "agent freed -> offer"), ("task_submitted", "task submitted -> offer")):
        f = figures[name]
        verdict = "ok" if f["p99_ms"] < TARGET_DECISION_P99_MS else "MISSED"
        print(f"  {label:26} p50 {f['p50_ms']:.3f} ms  p99 {f['p99_ms']:.3f} ms  max {f['max_ms']:.3f} ms"
              f"  ({f['count']})  target p99 < {TARGET_DECISION_P99_MS} ms  {verdict}")  # fmt: skip
    rate = figures["assignments_per_s"]
    verdict = "ok" if rate >= TARGET_ASSIGNMENTS_PER_S else "MISSED"
    print(f"  {'assignments per second':26} {rate:,} ({figures['throughput_cycles']:,} in {figures['throughput_s']} s)"
          f"  target >= {TARGET_ASSIGNMENTS_PER_S:,.0f}  {verdict}")  # fmt: skip


# ---- parts ---------------------------------------------------------------------------------------


# name -> (measure, print): each measure returns its figures with a "missed" list
def run_sse(database_url: str) -> Callable[[argparse.Namespace], dict[str, Any]]:
    def measure(args: argparse.Namespace) -> dict[str, Any]:
        return routing_sse.measure_sse(agents=args.sse_agents, database_url=database_url)

    return measure


PARTS: dict[str, tuple[Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], None]]] = {
    "core": (run_core, print_core),
    "sse": (run_sse(""), routing_sse.show),
    "sse_postgresql": (run_sse(PG), routing_sse.show),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--agents", type=int, default=1_000)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--waiting", type=int, default=10_000, help="tasks waiting in the busy queues")
    parser.add_argument("--aht", type=float, default=180.0, help="handling time that sets the pace of time")
    parser.add_argument("--decisions", type=int, default=5_000, help="timed decisions of each kind")
    parser.add_argument("--cycles", type=int, default=50_000, help="assignments in the throughput run")
    parser.add_argument("--seed", type=int, default=8585)
    parser.add_argument("--sse-agents", type=int, default=500, help="agents connected over SSE")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if unknown := [part for part in parts if part not in PARTS]:
        parser.error(f"unknown parts: {', '.join(unknown)}")
    if args.agents < 10 or args.queues < 5 or args.waiting < 1:
        parser.error("at least 10 agents, 5 queues and 1 waiting task")

    results: dict[str, Any] = {"machine": machine()}
    print(f"machine: {results['machine']}")
    for part in parts:
        measure, show = PARTS[part]
        results[part] = measure(args)
        show(results[part])
    results["machine_after"] = machine()
    print(json.dumps(results, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    misses = [miss for part in parts for miss in results[part]["missed"]]
    for miss in misses:
        print(f"MISSED {miss}")
    if not misses:
        print("all targets met")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
