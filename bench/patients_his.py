"""Screen pop with a HIS that answers in 100 ms: how long the workbench's HIS part takes.

    .venv/bin/python bench/patients_his.py                       # SQLite, 200 patients, HIS latency 100 ms
    .venv/bin/python bench/patients_his.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/patients_his.py --patients 500 --latency-ms 100 --concurrency 20

A fresh database (SQLite under a temporary folder, or a private PostgreSQL database beside the one given,
dropped afterwards) is migrated with Alembic; `--patients` of the simulated HIS's made-up people are put in
the local index (`index.upsert_from_his`). The simulated HIS then answers every call after `--latency-ms`.

For every patient, `HisGateway.overview(session, patient)` is timed as the workbench calls it: in its own
session and transaction, the three HIS calls (visits, appointments, results) in parallel through the time
limit and the circuit breaker, the snapshots written, the result statuses recorded, the commit. Once one
patient after the other, then `--concurrency` patients at a time (agents opening cards together).

Target (issue 7): screen pop p95 < 300 ms with a HIS answering in 100 ms; held to both runs. Every
overview must be live (a cached answer would be a miss: the HIS was up). Prints JSON; exits 1 on a miss.
`measure_screen_pop(database_url, ...)` returns the figures (with a `missed` list) for bench/patients.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from measures import machine, percentile

from patientline.core.auth.actor import SYSTEM
from patientline.core.db import Database
from patientline.core.migrations import upgrade
from patientline.patients import index
from patientline.patients.gateway import HisGateway
from patientline.patients.models import Patient
from patientline.patients.simulator import SimulatedHis

TARGET_P95_MS = 300.0


@dataclass
class Scratch:
    url: str
    backend: str
    remove: Callable[[], None]


async def _admin_execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def scratch_database(database_url: str | None) -> Scratch:
    if not database_url:
        folder = tempfile.TemporaryDirectory(prefix="pl-bench-his-")
        return Scratch(f"sqlite+aiosqlite:///{folder.name}/bench.db", "sqlite", folder.cleanup)
    name = f"pl_bench_his_{os.getpid()}_{secrets.token_hex(3)}"
    await _admin_execute(database_url, f'CREATE DATABASE "{name}"')

    def drop() -> None:
        asyncio.run(_admin_execute(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return Scratch(database_url.rsplit("/", 1)[0] + "/" + name, "postgresql", drop)


async def _load(db: Database, his: SimulatedHis, count: int) -> list[int]:
    ids = []
    async with db.sessions() as session, session.begin():
        for person in list(his.people.values())[:count]:
            ids.append((await index.upsert_from_his(session, actor=SYSTEM, record=person.record)).id)
    return ids


async def _pop(db: Database, gateway: HisGateway, patient_id: int) -> tuple[float, bool]:
    """One screen pop's HIS part as the workbench does it; (milliseconds, live)."""
    started = time.perf_counter()
    async with db.sessions() as session, session.begin():
        patient = await session.get(Patient, patient_id)
        assert patient is not None
        overview = await gateway.overview(session, patient)
    return (time.perf_counter() - started) * 1000, overview.live


def _figures(samples: list[tuple[float, bool]]) -> dict[str, Any]:
    times = sorted(ms for ms, _ in samples)
    return {
        "n": len(times),
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
        "max_ms": round(times[-1], 1) if times else None,
        "degraded": sum(1 for _, live in samples if not live),
    }


async def measure_screen_pop(
    database_url: str,
    *,
    patients: int = 200,
    latency_ms: int = 100,
    his_timeout: float = 1.5,
    concurrency: int = 10,
    warmup: int = 5,
) -> dict[str, Any]:
    """The figures of a migrated database at `database_url` (the caller makes and drops it)."""
    db = Database(database_url)
    his = SimulatedHis(size=max(patients, warmup), latency_ms=latency_ms)
    gateway = HisGateway(his, timeout=his_timeout, breaker_failures=3, breaker_seconds=30)
    try:
        ids = await _load(db, his, max(patients, warmup))
        for patient_id in ids[:warmup]:
            await _pop(db, gateway, patient_id)
        sequential = [await _pop(db, gateway, patient_id) for patient_id in ids[:patients]]
        concurrent: list[tuple[float, bool]] = []
        for start in range(0, patients, concurrency):
            batch = ids[start : start + concurrency]
            concurrent.extend(await asyncio.gather(*(_pop(db, gateway, patient_id) for patient_id in batch)))
    finally:
        await gateway.close()
        await db.dispose()
    figures = {
        "his_latency_ms": latency_ms,
        "timeout_s": his_timeout,
        "patients": patients,
        "concurrency": concurrency,
        "his_calls": his.calls,
        "one_at_a_time": _figures(sequential),
        "together": _figures(concurrent),
        "target_p95_ms": TARGET_P95_MS,
    }
    missed = []
    for run in ("one_at_a_time", "together"):
        if figures[run]["p95_ms"] >= TARGET_P95_MS:
            missed.append(f"{run}: p95 {figures[run]['p95_ms']} ms >= {TARGET_P95_MS:.0f} ms")
        if figures[run]["degraded"]:
            missed.append(f"{run}: {figures[run]['degraded']} overviews fell back to cached data")
    figures["missed"] = missed
    return figures


async def run(args: argparse.Namespace) -> dict[str, Any]:
    scratch = await scratch_database(args.database_url)
    try:
        await asyncio.to_thread(upgrade, scratch.url)  # Alembic runs its own event loop
        figures = await measure_screen_pop(
            scratch.url, patients=args.patients, latency_ms=args.latency_ms, his_timeout=args.timeout,
            concurrency=args.concurrency,
        )  # fmt: skip
    finally:
        await asyncio.to_thread(scratch.remove)
    return {"benchmark": "patients_his.screen_pop", "backend": scratch.backend, "machine": machine(), **figures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="", help="PostgreSQL server to make a scratch database on")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1.5, help="the gateway's time limit of one call (s)")
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 1 if result["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
