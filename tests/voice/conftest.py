"""One phone line for every real-SIP test: `patientline serve` with the voice role (Kamailio and two
media workers) on the demo hospital."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from phone_line import TRUNK_PORT, Line
from sip import Phone

from live import cli, free_port, serve, server_env


@pytest.fixture(scope="session")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Line]:
    var = tmp_path_factory.mktemp("voice")
    env = server_env(var)
    front_port, first_worker = free_port(), 27091
    env |= {"PATIENTLINE_VOICE": "1", "PATIENTLINE_VOICE_SIP_PORT": str(front_port),
            "PATIENTLINE_VOICE_WORKER_PORT": str(first_worker), "PATIENTLINE_VOICE_WORKERS": "2",
            "PATIENTLINE_VOICE_ANNOUNCE_SECONDS": "4", "PATIENTLINE_VOICE_RTP_PORT": "38000",
            "PATIENTLINE_VOICE_TRUNK": f"sip:127.0.0.1:{TRUNK_PORT}", "PATIENTLINE_VOICE_WITHHELD_ALLOWED": "1",
            "PATIENTLINE_VOICE_CALLER_IDS": "8585,01067098585", "PATIENTLINE_VOICE_SELF_TEST_MINUTES": "0",
            "PATIENTLINE_VOICE_ONCALL_PHONE": "13900990000", "PATIENTLINE_VOICE_NUMBERS": "8585,8586,8587"}  # fmt: skip
    cli(env, "migrate")
    cli(env, "seed-demo")
    with serve(env) as base:
        time.sleep(1.0)  # the workers' SIP ports and Kamailio come up beside the web server
        yield Line(base, var, front_port, iter(range(27200, 28000, 4)))


@pytest.fixture
def supervisor(line: Line) -> Iterator[httpx.Client]:
    with line.client("supervisor1") as http:
        yield http


@pytest.fixture
def agents(line: Line) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with line.client("agent01") as first, line.client("agent02") as second:
        yield first, second
        for http in (first, second):
            http.post("/api/routing/me/wrap-up/end")
            http.post("/api/routing/me/not-ready", json={"reason": "other"})


@pytest.fixture
def outside(line: Line) -> Iterator[Phone]:
    """The outside world: a test phone behind the line's trunk, answering only when told to."""
    phone = Phone("outside", TRUNK_PORT, line.front_port, line.var).start(auto_answer=False)
    yield phone
    phone.stop()
