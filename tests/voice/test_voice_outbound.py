"""Outbound calls from the workbench on the real line. The line's trunk is a test phone (the outside
world): it sees the number dialled and the caller ID shown, answers or refuses, and plays a tone, so the
agent's and the patient's recordings prove both heard each other."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from phone_line import AGENT_HZ, CALLER_HZ, Call, Line, Party, answered_outside, connect, live_call, ready, started
from sip import Phone, refused_scenario, tools_missing

pytestmark = pytest.mark.skipif(bool(tools_missing()), reason=f"missing {tools_missing()}")
HEARD, UNHEARD = 1000.0, 500.0


def me(http: httpx.Client) -> dict[str, Any]:
    return dict(http.get("/api/routing/me").json())


def test_an_agent_calls_a_patient_who_answers_and_both_are_heard_and_recorded(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client], outside: Phone
) -> None:
    agent_http, _ = agents
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        ready(agent_http)
        ids = agent_http.get("/api/voice/outbound/caller-ids").json()
        assert ids == {"caller_ids": ["8585", "01067098585", "withheld"], "trunk": True}

        dialled = agent_http.post("/api/voice/outbound", json={"number": "138 0013 8000"})
        assert dialled.status_code == 201, dialled.text
        live = dialled.json()
        assert (live["direction"], live["caller_masked"], live["dialled"]) == ("outbound", "138****8000", "8585")
        agent_leg = str(agent_phone.wait_for("answered", 5)["leg"])

        incoming, patient = answered_outside(outside, CALLER_HZ)
        assert incoming["dialled"] == "13800138000"  # national digits for the trunk
        assert "sip:8585@" in incoming["from"]
        # while the call lasts the router offers the agent nothing
        assert (me(agent_http)["status"], me(agent_http)["reason"]) == ("not_ready", "outbound")

        talking = live_call(agent_http)
        assert talking["id"] == live["id"] and talking["contact_id"]
        agent = Party(agent_phone, agent_leg, AGENT_HZ)
        patient.play(line.var)
        agent.play(line.var)
        heard = Call(line, live["id"], patient, agent).heard([patient, agent], "outbound")
        assert heard[CALLER_HZ][AGENT_HZ] > HEARD and heard[AGENT_HZ][CALLER_HZ] > HEARD, heard

        # an agent on a call cannot start another; the patient is put on hold like any caller
        assert agent_http.post("/api/voice/outbound", json={"number": "13800138001"}).json()["error_id"] == "on_a_call"
        held = agent_http.post(f"/api/voice/live/{live['id']}/hold", json={"on": True})
        assert held.status_code == 200 and held.json()["hold"] is True
        assert agent_http.post(f"/api/voice/live/{live['id']}/hold", json={"on": False}).status_code == 200
        assert agent_http.post(f"/api/voice/live/{live['id']}/hangup").status_code == 200

    record = line.last_call(supervisor, after=before)
    assert (record["direction"], record["end_reason"], record["dialled"]) == ("outbound", "agent_hung_up", "8585")
    assert record["recording_seconds"] > 2 and record["contact_id"] == talking["contact_id"]
    assert [e["event"] for e in record["events"]][:2] == ["dialling", "connected"]
    contact = agent_http.get(f"/api/contacts/{record['contact_id']}").json()
    assert (contact["channel"], contact["direction"]) == ("voice", "outbound") and contact["ended_at"]
    assert me(agent_http)["status"] == "ready"  # made ready again
    with line.client("admin") as admin:
        audited = admin.get("/api/audit", params={"action": "voice.outbound", "limit": 5}).json()
    assert any(e["after"]["live_id"] == live["id"] and e["after"]["number"] == "138****8000" for e in audited), audited


def test_outbound_calls_keep_to_the_caller_id_policy_and_report_why_nobody_answered(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client], outside: Phone
) -> None:
    agent_http, _ = agents
    refused = {
        "12345": ("number", {"number": "12345"}),
        "abroad": ("number", {"number": "+1 650 253 0000"}),
        "someone else's number": ("caller_id", {"number": "13800138000", "caller_id": "01012345678"}),
        "nothing to call": ("number", {}),
    }
    for case, (field, body) in refused.items():
        answer = agent_http.post("/api/voice/outbound", json=body)
        assert answer.status_code == 422, (case, answer.text)
        assert answer.json()["details"]["field"] == field, case
    assert agent_http.post("/api/voice/outbound", json={"patient_phone_id": 999999}).status_code == 404
    assert agent_http.post("/api/voice/outbound", json={"number": "13800138000", "extra": 1}).status_code == 422
    # no phone registered for the agent: refused at once, nothing dialled
    assert agent_http.post("/api/voice/outbound", json={"number": "13800138000"}).json()["error_id"] == (
        "phone_not_answered"
    )

    before = line.last_id(supervisor)
    with ExitStack() as stack:
        stack.enter_context(started(line, "agent01"))
        ready(agent_http)
        dialled = agent_http.post("/api/voice/outbound", json={"number": "13800138000", "caller_id": "withheld"})
        assert dialled.status_code == 201, dialled.text
        incoming = outside.wait_for("incoming", 20)
        assert "anonymous" in incoming["from"].lower() and "8585" not in incoming["from"]
        outside.send(cmd="answer", leg=incoming["leg"], code=486)
        record = line.last_call(supervisor, after=before)
        assert (record["end_reason"], record["contact_id"], record["recording_seconds"]) == ("busy", None, None)
        assert me(agent_http)["status"] == "ready"

        # a patient's phone on file, called from their card without the agent seeing the number; the agent
        # gives up while it rings
        before = record["id"]
        found = agent_http.post("/api/patients/search", json={"query": "13900990001"}).json()
        patient_id = found["candidates"][0]["id"]
        page = agent_http.get(f"/workbench/patients/{patient_id}")
        phone_id = agent_http.get(f"/api/patients/{patient_id}").json()["phones"][0]["id"]
        assert f'data-wb-call="{phone_id}"' in page.text
        body = {"patient_phone_id": phone_id, "caller_id": "01067098585"}
        dialled = agent_http.post("/api/voice/outbound", json=body)
        assert dialled.status_code == 201, dialled.text
        incoming = outside.wait_for("incoming", 20, dialled="13900990001")
        assert "sip:01067098585@" in incoming["from"]
        assert live_call(agent_http, "dialling")["id"] == dialled.json()["id"]
        assert agent_http.post(f"/api/voice/live/{dialled.json()['id']}/hangup").status_code == 200
        assert line.last_call(supervisor, after=before)["end_reason"] == "agent_cancelled"
        time.sleep(0.5)


def test_callers_from_outside_cannot_reach_the_trunk_through_the_line(line: Line, outside: Phone) -> None:
    assert line.caller().call(refused_scenario(404), number="13800138000", timeout_s=20) == 0
    assert not [e for e in outside.events if e.get("event") == "incoming"]


def test_a_consultation_with_an_outside_number_keeps_to_the_caller_id_policy(
    line: Line, agents: tuple[httpx.Client, httpx.Client], outside: Phone
) -> None:
    agent_http, _ = agents
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        ready(agent_http)
        call = connect(line, stack, agent_http, agent_phone)
        url = f"/api/voice/live/{call.live_id}"
        abroad = agent_http.post(f"{url}/consult", json={"target": "+16502530000"})
        assert abroad.status_code == 422 and abroad.json()["details"]["field"] == "number"
        assert agent_http.post(f"{url}/hold", json={"on": False}).status_code == 200  # still the agent's call

        with ThreadPoolExecutor(1) as pool:  # the consultation answers once the number has
            consulting = pool.submit(agent_http.post, f"{url}/consult", json={"target": "13800138000"})
            incoming, _ = answered_outside(outside, CALLER_HZ)
            consulted = consulting.result(timeout=30)
        assert consulted.status_code == 200, consulted.text
        assert incoming["dialled"] == "13800138000" and "sip:8585@" in incoming["from"]
        assert agent_http.post(f"{url}/consult/end", json={"how": "cancel"}).status_code == 200
        assert agent_http.post(f"{url}/hangup").status_code == 200
