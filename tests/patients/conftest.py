"""HIS fixtures: an independent FHIR R4 server (sekmet-fhir, from PyPI) on 127.0.0.1 for the whole
session, a small misbehaving HTTP server (errors, garbage, slowness), and the simulated HIS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from his_servers import BadServer, free_port, stop, wait_until_up

from patientline.patients.simulator import SimulatedHis

FHIR_HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


@pytest.fixture(scope="session")
def sekmet_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a sekmet-fhir server of this session's own (its store under a temporary directory)."""
    home = tmp_path_factory.mktemp("sekmet")
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    config = {"host": "127.0.0.1", "port": port, "base_url": base, "data_dir": str(home / "data"),
              "simulator": {"enabled": False}, "log_inbound": False}  # fmt: skip
    (home / "settings.yaml").write_text(json.dumps(config))  # JSON is YAML
    executable = Path(sys.executable).parent / "sekmet"
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(executable), "serve"], cwd=home, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "SEKMET_CONFIG": str(home / "settings.yaml")},
    )  # fmt: skip
    try:
        wait_until_up(f"{base}/metadata", process=process)
        yield base
    finally:
        stop(process)
        log.close()


@pytest.fixture(scope="session")
def fhir_post(sekmet_url: str) -> Any:
    """`fhir_post(resource) -> id`: stores a resource on the sekmet server."""

    def post(resource: dict[str, Any]) -> str:
        response = httpx.post(f"{sekmet_url}/{resource['resourceType']}", json=resource, headers=FHIR_HEADERS)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    return post


@pytest.fixture
async def bad_server() -> AsyncIterator[BadServer]:
    server = BadServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def simulated_his() -> SimulatedHis:
    """A small simulated HIS answering at once."""
    return SimulatedHis(seed=4242, size=40)
