"""Faults on real calls: callers who hang up at each step, keys the menu does not know, a media worker
killed mid-conversation, Kamailio killed. Each must end the call cleanly: no task left waiting, no agent
left busy, a call record that says why, and the line answering again."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from phone_line import Line, call_in, connect, ready, started
from sip import keys, pause, refused_scenario, scenario, tools_missing

from patientline.core.config import Settings
from patientline.voice.plant import kamailio_binary, kamailio_config, modules_dir

pytestmark = pytest.mark.skipif(bool(tools_missing()), reason=f"missing {tools_missing()}")
GSM_ONLY = ("3", "a=rtpmap:3 GSM/8000")


def processes(var: Path, name: str) -> list[int]:
    """Pids of this line's processes whose command line names `name` and the line's var directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if name in command and str(var) in command:
            found.append(int(entry.name))
    return found


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def answers_again(line: Line) -> None:
    """The plant starts killed workers again: a worker answers the next offer (488: it has no GSM)."""
    for _ in range(50):
        if line.caller().call(refused_scenario(488, media=GSM_ONLY), timeout_s=5) == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the line did not come back after its workers were killed")


def test_a_caller_who_hangs_up_during_the_greeting_leaves_no_task(line: Line, supervisor: httpx.Client) -> None:
    before = line.last_id(supervisor)
    assert line.caller().call(scenario(pause(1500)), timeout_s=20) == 0
    call = line.last_call(supervisor, after=before)
    assert call["end_reason"] == "caller_hung_up" and call["routing_task_id"] is None
    assert call["ivr"]["path"][:2] == ["chime", "welcome"] and call["connected_at"] is None


def test_keys_the_menu_does_not_know_are_asked_again(line: Line, supervisor: httpx.Client) -> None:
    before = line.last_id(supervisor)
    steps = pause(1500) + keys("9*#7", gap_ms=600) + pause(30000)  # past the greeting, into the menu
    assert line.caller().call(scenario(steps), timeout_s=60) == 0
    call = line.last_call(supervisor, after=before)
    # the first wrong key is taken and the menu asked again; what was typed after it is dropped
    assert call["ivr"]["keys"] == ["9"] and call["ivr"]["path"][-1] in ("menu", "night"), call["ivr"]
    assert call["end_reason"] == "caller_hung_up" and call["routing_task_id"] is None


@pytest.mark.parametrize("fault", ["caller_hung_up", "worker_failed"])
def test_a_call_ended_while_the_agent_rings_stops_the_ringing_and_frees_the_agent(
    fault: str, line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client]
) -> None:
    agent_http, _ = agents
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01", auto_answer=False))
        ready(agent_http)
        caller_phone = call_in(line, stack)
        ringing = agent_phone.wait_for("incoming", 90)
        if fault == "caller_hung_up":
            caller_phone.send(cmd="hangup", leg="out")
        else:
            kill(processes(line.var, "patientline.voice.worker --sip-port 2709"))
            caller_phone.wait_for("ended", 10, leg="out")  # the SIP front hangs up the caller
        agent_phone.wait_for("ended", 10, leg=ringing["leg"])  # and cancels the ringing
    call = line.last_call(supervisor, after=before)
    assert call["end_reason"] == fault and call["agent_id"] is None, call
    me = agent_http.get("/api/routing/me").json()
    assert me["offer"] is None and me["tasks"] == [] and me["status"] == "ready"
    if fault == "worker_failed":
        answers_again(line)


def test_a_worker_killed_mid_call_ends_the_call_and_frees_the_agent(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client]
) -> None:
    agent_http, _ = agents
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        ready(agent_http)
        talk = connect(line, stack, agent_http, agent_phone)
        kill(processes(line.var, "patientline.voice.worker --sip-port 2709"))
        call = line.last_call(supervisor, after=before)
        # the SIP front hangs up both phones' legs: neither is left holding a silent call
        talk.caller.phone.wait_for("ended", 10, leg=talk.caller.leg)
        agent_phone.wait_for("ended", 10, leg=talk.agent.leg)
    assert call["end_reason"] == "worker_failed" and call["agent_id"] and call["contact_id"]
    assert agent_http.get("/api/voice/live").json() == []
    me = agent_http.get("/api/routing/me").json()
    assert me["tasks"] == [] and me["status"] in ("wrap_up", "ready")
    answers_again(line)


def test_kamailio_killed_is_started_again_and_the_line_answers(line: Line) -> None:
    front = processes(line.var, "kamailio")
    assert front
    kill(front)
    time.sleep(1.0)
    for _ in range(50):
        if line.caller().call(refused_scenario(404), number="9999", timeout_s=5) == 0:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the SIP front did not come back")
    assert set(processes(line.var, "kamailio")).isdisjoint(front)


def _sip(front_port: int, request: str, *, answer: bool = True) -> str:
    """Sends one raw datagram to the SIP front from a fresh port; the first final response (or "")."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(3.0)
        own = sock.getsockname()[1]
        sock.sendto(request.replace("{own}", str(own)).replace("\n", "\r\n").encode(), ("127.0.0.1", front_port))
        if not answer:
            return ""
        for _ in range(10):
            reply = sock.recv(65535).decode(errors="replace")
            if int(reply.split(" ", 2)[1]) >= 200:
                return reply
    return ""


def _request(method: str, uri: str, *, to_tag: str = "", body: str = "", call_id: str = "fault-1") -> str:
    to = f"<{uri}>" + (f";tag={to_tag}" if to_tag else "")
    return (f"{method} {uri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{{own}};branch=z9hG4bK-{call_id}-{method}\n"
            f"Max-Forwards: 70\nFrom: <sip:13800138000@127.0.0.1>;tag=f1\nTo: {to}\nCall-ID: {call_id}\n"
            f"CSeq: 1 {method}\nContact: <sip:13800138000@127.0.0.1:{{own}}>\n"
            f"Content-Type: application/sdp\nContent-Length: {len(body.encode())}\n\n{body}")  # fmt: skip


def test_malformed_sip_and_sdp_are_refused_and_the_line_goes_on(line: Line) -> None:
    front = line.front_port
    _sip(front, "\x00\xffnot sip at all\n\n", answer=False)
    _sip(front, "INVITE sip:8585@127.0.0.1 SIP/2.0\nVia: broken\n\n", answer=False)
    bad_sdp = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio notaport RTP/AVP 0\n"
    refused = _sip(front, _request("INVITE", f"sip:8585@127.0.0.1:{front}", body=bad_sdp, call_id="bad-sdp"))
    assert refused.startswith("SIP/2.0 4"), refused  # a clear refusal, not a call
    options = _sip(front, _request("OPTIONS", f"sip:127.0.0.1:{front}", call_id="alive"))
    assert options.startswith("SIP/2.0 200"), options  # the front is still there
    stray = _sip(front, _request("BYE", "sip:someone@192.0.2.7:5060", to_tag="t9", call_id="stray"))
    assert stray.startswith("SIP/2.0 404"), stray  # not routed through the front: not relayed anywhere
    assert line.caller().call(refused_scenario(404), number="9999", timeout_s=20) == 0  # and routes calls


def test_hotline_numbers_with_a_plus_or_a_star_are_matched_literally(tmp_path: Path) -> None:
    settings = Settings(voice_numbers="8585,+861067098585,*85")
    config = kamailio_config(settings, modules_dir())
    numbers = re.search(r'\$rU =~ "\^\((.+?)\)\$"', config)
    assert numbers is not None
    for dialled, routed in [("8585", True), ("+861067098585", True), ("*85", True), ("861067098585", False),
                            ("85", False), ("885", False), ("8585585", False)]:  # fmt: skip
        assert bool(re.fullmatch(numbers.group(1), dialled)) is routed, dialled
    (tmp_path / "kamailio.cfg").write_text(config)
    (tmp_path / "dispatcher.list").write_text("1 sip:127.0.0.1:27301\n")
    checked = subprocess.run(
        [kamailio_binary(), "-c", "-f", "kamailio.cfg"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr[-2000:]
