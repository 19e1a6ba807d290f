"""`patientline patients his-simulator` serves the demo HIS as FHIR R4 over HTTP, and a gateway built from
the settings (adapter fhir) reads it: the same made-up people as the in-process simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from his_servers import free_port, stop, wait_until_up

from patientline.core.config import Settings
from patientline.patients.fhir import FhirHis
from patientline.patients.gateway import HisGateway
from patientline.patients.simulator import SimulatedHis


@pytest.fixture(scope="module")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    home = tmp_path_factory.mktemp("his-simulator")
    env = {**os.environ, "PATIENTLINE_HIS_SIMULATOR_TOKEN": "demo-token", "PATIENTLINE_VAR_DIR": str(home)}
    log = (home / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "patientline"), "patients", "his-simulator", "--port", str(port),
         "--size", "60", "--latency-ms", "0"],
        cwd=home, stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        wait_until_up(
            f"http://127.0.0.1:{port}/fhir/metadata", process=process, headers={"Authorization": "Bearer demo-token"}
        )
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        stop(process)
        log.close()


async def test_the_served_simulator_answers_the_fhir_adapter(simulator_url: str) -> None:
    local = SimulatedHis(size=60)
    person = max(local.people.values(), key=lambda p: len(p.visits) + len(p.results))
    adapter = FhirHis(simulator_url, token="demo-token", timeout=5.0)
    try:
        await adapter.check()
        assert await adapter.find_patients(kind="mrn", value=person.record.identifiers["mrn"]) == [person.record]
        assert await adapter.visits(person.record.his_id) == person.visits
        assert len(await adapter.results(person.record.his_id)) == len(person.results)
    finally:
        await adapter.close()


async def test_a_gateway_from_the_settings_uses_it(simulator_url: str, tmp_path: Path) -> None:
    settings = Settings(
        his_adapter="fhir", his_fhir_url=simulator_url, his_fhir_token="demo-token", var_dir=tmp_path, _env_file=None
    )  # type: ignore[call-arg]
    gateway = HisGateway.from_settings(settings)
    try:
        assert gateway.adapter == "fhir"
        assert (await gateway.test_connection())["ok"] is True
        person = next(iter(SimulatedHis(size=60).people.values()))
        assert await gateway.search(phone=person.record.phones[0]) != []
    finally:
        await gateway.close()

    without_token = Settings(his_adapter="fhir", his_fhir_url=simulator_url, var_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    gateway = HisGateway.from_settings(without_token)
    try:
        tested = await gateway.test_connection()
        assert tested["ok"] is False and "HTTP 401" in tested["last_error"]
    finally:
        await gateway.close()

    unset = HisGateway.from_settings(Settings(his_adapter="fhir", var_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]
    assert unset.status()["connected"] is False and "HIS_FHIR_URL" in unset.status()["not_connected_reason"]
