"""Patients benchmark (issue 7): caller lookup among 1,000,000 patients, the screen pop, HL7 v2 ingest.

    .venv/bin/python bench/patients.py                         # every part; exit 1 when a target is missed
    .venv/bin/python bench/patients.py --parts lookup --patients 100000 --queries 500
    .venv/bin/python bench/patients.py --parts screen_pop,mllp,mllp_postgresql

Parts:
- `lookup`, `lookup_postgresql` (bench/patients_lookup.py): 1,000,000 patients bulk-loaded into a fresh
  migrated database (SQLite in a temporary folder; a private PostgreSQL database on the server of
  PATIENTLINE_BENCH_DATABASE_URL, default the local test server, dropped afterwards); lookups by phone,
  ID card number and medical-record number through `patients.index.lookup` and the audited
  `patients.access.search`, each in its own transaction. Target p95 < 20 ms.
- `screen_pop` (bench/patients_his.py): the workbench's HIS overview against the simulated HIS answering
  in 100 ms, one patient at a time and ten together, on SQLite. Target p95 < 300 ms.
- `mllp`, `mllp_postgresql` (bench/patients_mllp.py): ADT^A01 and ORU^R01 through the product's MLLP
  listener, each acknowledged, into an index already holding `--preload` patients (default 100,000).
  Target >= 500 messages/s.

Prints the figures of each part and one JSON line (a dict of parts); exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import patients_his
import patients_lookup
import patients_mllp
from measures import create_database, drop_database, machine, run_as_served

from patientline.core.migrations import upgrade

PG = os.environ.get("PATIENTLINE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
TARGET_SCREEN_POP_P95_MS = 300.0
TARGET_MLLP_PER_S = 500.0

Part = tuple[Callable[[argparse.Namespace], dict[str, Any]], Callable[[dict[str, Any]], None]]


# ---- lookup -------------------------------------------------------------------------------------------


def run_lookup(database_url: str) -> Callable[[argparse.Namespace], dict[str, Any]]:
    def measure(args: argparse.Namespace) -> dict[str, Any]:
        return patients_lookup.measure_lookup(
            database_url, patients=args.patients, queries_per_kind=args.queries, warmup=args.warmup,
            names=args.names, seed=args.seed,
        )  # fmt: skip

    return measure


# ---- screen pop ---------------------------------------------------------------------------------------


def run_screen_pop(args: argparse.Namespace) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        scratch = await patients_his.scratch_database("")
        try:
            await asyncio.to_thread(upgrade, scratch.url)  # Alembic runs its own event loop
            figures = await patients_his.measure_screen_pop(
                scratch.url, patients=args.pop_patients, latency_ms=args.his_latency_ms,
                concurrency=args.pop_concurrency,
            )  # fmt: skip
        finally:
            await asyncio.to_thread(scratch.remove)
        figures["missed"] = [f"screen_pop {miss}" for miss in figures["missed"]]
        return {"backend": scratch.backend, **figures}

    return asyncio.run(run())


def show_screen_pop(figures: dict[str, Any]) -> None:
    if "one_at_a_time" not in figures:
        return
    print(f"screen pop on {figures['backend']}: HIS answering in {figures['his_latency_ms']} ms, "
          f"{figures['patients']} patients, {figures['his_calls']} HIS calls")  # fmt: skip
    for run, label in (("one_at_a_time", "one at a time"), ("together", f"{figures['concurrency']} together")):
        f = figures[run]
        verdict = "ok" if f["p95_ms"] < TARGET_SCREEN_POP_P95_MS and not f["degraded"] else "MISSED"
        print(f"  {label:14} p50 {f['p50_ms']} ms  p95 {f['p95_ms']} ms  max {f['max_ms']} ms  ({f['n']}, "
              f"{f['degraded']} from cache)  target p95 < {TARGET_SCREEN_POP_P95_MS:.0f} ms  {verdict}")  # fmt: skip


# ---- MLLP ---------------------------------------------------------------------------------------------


def run_mllp(backend: str) -> Callable[[argparse.Namespace], dict[str, Any]]:
    def measure(args: argparse.Namespace) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            url = await create_database(backend, patients_mllp.DATABASE)
            try:
                prepared = await patients_mllp.prepare(url, backend, preload=args.preload, seed=args.seed)
                return {**prepared, **await patients_mllp.measure(url, messages=args.messages,
                                                                  connections=args.connections)}  # fmt: skip
            finally:
                await drop_database(backend, url)

        figures: dict[str, Any] = {"backend": backend, **run_as_served(run())}  # the worker's loop
        figures["missed"] = []
        if figures["messages_per_s"] < TARGET_MLLP_PER_S:
            figures["missed"].append(
                f"mllp {backend}: {figures['messages_per_s']} messages/s < {TARGET_MLLP_PER_S:.0f}"
            )
        if figures["not_accepted"]:
            figures["missed"].append(f"mllp {backend}: {figures['not_accepted']} messages not accepted")
        return figures

    return measure


def show_mllp(figures: dict[str, Any]) -> None:
    if "messages_per_s" not in figures:
        return
    verdict = "ok" if not figures["missed"] else "MISSED"
    print(f"MLLP ingest on {figures['backend']} ({figures['preloaded']:,} patients already indexed): "
          f"{figures['messages']:,} messages over {figures['connections']} "
          f"connections in {figures['seconds']} s: {figures['messages_per_s']} messages/s, "
          f"{figures['not_accepted']} not accepted  target >= {TARGET_MLLP_PER_S:.0f}/s  {verdict}")  # fmt: skip


# ---- parts --------------------------------------------------------------------------------------------

PARTS: dict[str, Part] = {
    "lookup": (run_lookup(""), patients_lookup.show),
    "lookup_postgresql": (run_lookup(PG), patients_lookup.show),
    "screen_pop": (run_screen_pop, show_screen_pop),
    "mllp": (run_mllp("sqlite"), show_mllp),
    "mllp_postgresql": (run_mllp("postgresql"), show_mllp),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}")
    parser.add_argument("--patients", type=int, default=1_000_000, help="patients in the lookup parts")
    parser.add_argument("--queries", type=int, default=2_000, help="timed lookups of each kind")
    parser.add_argument("--warmup", type=int, default=100, help="untimed lookups of each kind first")
    parser.add_argument("--names", type=int, default=40, help="searches by name, for information")
    parser.add_argument("--pop-patients", type=int, default=200, help="screen pops of each run")
    parser.add_argument("--pop-concurrency", type=int, default=10, help="screen pops together")
    parser.add_argument("--his-latency-ms", type=int, default=100)
    parser.add_argument("--messages", type=int, default=5_000, help="HL7 messages of each MLLP part")
    parser.add_argument("--connections", type=int, default=8, help="MLLP connections")
    parser.add_argument("--preload", type=int, default=patients_mllp.PRELOAD, help="patients indexed before MLLP")
    parser.add_argument("--seed", type=int, default=8585)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if unknown := [part for part in parts if part not in PARTS]:
        parser.error(f"unknown parts: {', '.join(unknown)}")
    if args.patients < 1_000 or args.queries < 1:
        parser.error("at least 1,000 patients and one query")

    results: dict[str, Any] = {"machine": machine()}
    print(f"machine: {results['machine']}", flush=True)
    for part in parts:
        measure, show = PARTS[part]
        results[part] = measure(args)
        show(results[part])
        sys.stdout.flush()
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
