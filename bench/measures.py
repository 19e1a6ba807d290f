"""What the benchmarks share: nearest-rank percentiles, a line describing the machine, and the event loop
the product is served on.

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
