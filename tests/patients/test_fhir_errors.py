"""The FHIR adapter when the server misbehaves: every failure is a `HisError` with a clear message that
carries no patient data; next links are followed only on the same server and only so far."""

from __future__ import annotations

import pytest
from his_servers import BadServer, free_port

from patientline.patients import fhir
from patientline.patients.fhir import FhirHis
from patientline.patients.his import HisError

PHONE = "+8613900001234"
SECRETS = ("13900001234", "王小明", "M0001")


async def failure(server_url: str, mode: str, *, seconds: float = 2.0, **search: str) -> str:
    adapter = FhirHis(f"{server_url}/{mode}", timeout=seconds)
    try:
        with pytest.raises(HisError) as caught:
            if search:
                await adapter.find_patients(**search)
            else:
                await adapter.visits("p1")
    finally:
        await adapter.close()
    message = str(caught.value)
    assert not any(secret in message for secret in SECRETS), message
    return message


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("http500", "HTTP 500"),
        ("garbage", "not FHIR JSON"),
        ("html", "not FHIR JSON"),
        ("notfhir", "not FHIR JSON"),
        ("outcome", "OperationOutcome: error/not-found"),
        ("notfound", "HTTP 404: error/not-found"),
    ],
)
async def test_errors_and_garbage(bad_server: BadServer, mode: str, expected: str) -> None:
    assert expected in await failure(bad_server.url, mode, kind="mrn", value="M0001")
    assert expected in await failure(bad_server.url, mode, phone=PHONE)
    assert expected in await failure(bad_server.url, mode)


async def test_a_slow_server_times_out(bad_server: BadServer) -> None:
    bad_server.slow_seconds = 1.0
    assert "did not answer in time" in await failure(bad_server.url, "slow", seconds=0.2)


async def test_a_server_that_is_not_there() -> None:
    assert "cannot be reached" in await failure(f"http://127.0.0.1:{free_port()}", "fhir")


async def test_next_links_are_followed_a_bounded_number_of_times(bad_server: BadServer) -> None:
    adapter = FhirHis(f"{bad_server.url}/loop", timeout=2.0)
    try:
        visits = await adapter.visits("p1")
    finally:
        await adapter.close()
    assert len(visits) == fhir.MAX_PAGES
    assert len(bad_server.paths) == fhir.MAX_PAGES


async def test_a_next_link_to_another_server_is_refused(bad_server: BadServer) -> None:
    adapter = FhirHis(f"{bad_server.url}/foreign", timeout=2.0, token="s3cret")
    try:
        with pytest.raises(HisError, match="another server"):
            await adapter.visits("p1")
    finally:
        await adapter.close()
    assert len(bad_server.paths) == 1
    assert bad_server.headers[0]["authorization"] == "Bearer s3cret"


async def test_an_invalid_entry_is_passed_over(bad_server: BadServer) -> None:
    adapter = FhirHis(f"{bad_server.url}/mixed", timeout=2.0)
    try:
        found = await adapter.find_patients(phone=PHONE)
    finally:
        await adapter.close()
    assert [(p.his_id, p.name) for p in found] == [("good", "赵六")]


async def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="http"):
        FhirHis("ftp://his.example/fhir")
    with pytest.raises(ValueError, match="unknown identifier kinds"):
        FhirHis("http://his.example/fhir", identifier_systems={"passport": "urn:x"})
    adapter = FhirHis("http://his.example/fhir", identifier_systems={"mrn": "urn:oid:1.2.3"})
    try:
        with pytest.raises(HisError, match="no FHIR identifier system"):
            await adapter.find_patients(kind="id_card", value="110105198002030079")
    finally:
        await adapter.close()
