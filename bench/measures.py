"""What the benchmarks share: nearest-rank percentiles, a line describing the machine, the event loop the
product is served on, and scratch databases.

Importing it also imports the standard library's `http` package with this folder off `sys.path`, where
bench/http.py would shadow it for the product's imports that follow."""

from __future__ import annotations

import asyncio
import math
import os
import platform
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

_HERE = Path(__file__).resolve().parent
_PATH = sys.path[:]
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != _HERE]
import http  # noqa: E402,F401

sys.path[:] = _PATH

T = TypeVar("T")
BENCH_DIR = _HERE.parent / "var" / "bench"
BENCH_DATABASE_URL = os.environ.get(
    "PATIENTLINE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def machine() -> str:
    load = os.getloadavg()
    memory = ""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f", {int(line.split()[1]) / 1024 / 1024:.0f} GB RAM"
    return (f"{os.cpu_count()} CPUs{memory}, Python {platform.python_version()}, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip


def run_as_served(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine on the event loop `patientline serve` runs the product on: uvicorn's `loop="auto"`
    (uvloop when it is installed, as `uvicorn[standard]` installs it)."""
    from uvicorn.loops.auto import auto_loop_factory

    with asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
        return runner.run(coroutine)


async def create_database(backend: str, name: str) -> str:
    """A fresh, empty database `name`: var/bench/<name>.db on SQLite, or pl_bench_<name> on the PostgreSQL
    server of PATIENTLINE_BENCH_DATABASE_URL (default the local test server); what was there goes first."""
    if backend == "sqlite":
        path = BENCH_DIR / f"{name}.db"
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        _remove_sqlite(path)
        return f"sqlite+aiosqlite:///{path}"
    await _admin(f'DROP DATABASE IF EXISTS "pl_bench_{name}" WITH (FORCE)', f'CREATE DATABASE "pl_bench_{name}"')
    return BENCH_DATABASE_URL.rsplit("/", 1)[0] + f"/pl_bench_{name}"


async def drop_database(backend: str, url: str) -> None:
    if backend == "sqlite":
        _remove_sqlite(Path(url.split("///", 1)[1]))
    else:
        await _admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def _admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(BENCH_DATABASE_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
