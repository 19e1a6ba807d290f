"""A real `patientline serve` process on 127.0.0.1 for tests that need one (browser, fuzzing)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent / "patientline"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"patientline {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def server_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENTLINE_")}
    env |= {
        "PATIENTLINE_VAR_DIR": str(var_dir),
        "PATIENTLINE_ROLES": "web,worker,router",
        "PATIENTLINE_LOG_LEVEL": "WARNING",
    }
    return env


@contextmanager
def serve(env: dict[str, str]) -> Iterator[str]:
    """Migrate, start the server, wait until it answers; stop it afterwards."""
    cli(env, "migrate")
    port = free_port()
    log = open(Path(env["PATIENTLINE_VAR_DIR"]) / "serve.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
