"""Blind transfers on the real line: to a colleague's phone, to an outside number, and one nobody
answers (the caller goes back to the queue). The tones in each phone's recording prove who talks to
whom once the call has moved on."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest
from phone_line import CALLER_HZ, Call, Line, Party, answered_outside, connect, joined, live_call, ready, started
from sip import Phone, tools_missing

pytestmark = pytest.mark.skipif(bool(tools_missing()), reason=f"missing {tools_missing()}")
COLLEAGUE_HZ, OUTSIDE_HZ = 1900, 1300
HEARD, UNHEARD = 1000.0, 500.0


def test_an_agent_passes_the_caller_to_a_colleague_and_is_freed_at_once(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client]
) -> None:
    agent_http, colleague_http = agents
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        colleague_phone = stack.enter_context(started(line, "agent02"))
        ready(agent_http)
        call = connect(line, stack, agent_http, agent_phone)
        url = f"/api/voice/live/{call.live_id}"

        targets = agent_http.get("/api/voice/transfer-targets")
        assert targets.status_code == 200, targets.text
        kinds = {queue["kind"] for queue in targets.json()["queues"]}
        assert {"skill_group", "department_seats", "expert_centre"} <= kinds
        names = [colleague["username"] for colleague in targets.json()["colleagues"]]
        assert "agent02" in names and "agent01" not in names
        assert httpx.get(f"{line.base}/api/voice/transfer-targets").status_code == 401

        for wrong in ({}, {"queue_id": 1, "target": "agent02"}, {"target": ""}, {"target": "agent02", "x": 1}):
            assert agent_http.post(f"{url}/transfer", json=wrong).status_code == 422, wrong
        for who in ("agent01", "nobody-here"):
            refused = agent_http.post(f"{url}/transfer", json={"target": who})
            assert refused.status_code == 422 and refused.json()["details"]["field"] == "target", refused.text
        task_id = live_call(agent_http)["task_id"]
        generic = agent_http.post(f"/api/routing/tasks/{task_id}/transfer", json={"queue_id": 1})
        assert generic.status_code == 409 and generic.json()["error_id"] == "voice_task", generic.text

        passed = agent_http.post(f"{url}/transfer", json={"target": "agent02"})
        assert passed.status_code == 200 and passed.json()["talker"] == "third", passed.text
        agent_phone.wait_for("ended", 10, leg=call.agent.leg)
        assert agent_http.get("/api/voice/live").json() == []  # freed before the colleague answers
        colleague = joined(colleague_phone, COLLEAGUE_HZ, line.var)
        heard = call.heard([call.caller, colleague], "passed")
        assert heard[CALLER_HZ][COLLEAGUE_HZ] > HEARD and heard[COLLEAGUE_HZ][CALLER_HZ] > HEARD
        assert colleague_http.get("/api/voice/live").json() == []  # a colleague's call, not a routed task
        colleague_phone.send(cmd="hangup", leg=colleague.leg)
        call.caller.phone.wait_for("ended", 10, leg="out")

    record = line.last_call(supervisor, after=before)
    assert record["end_reason"] == "transferee_hung_up"
    transfers = [event for event in record["events"] if event["event"] == "transferring"]
    assert transfers and transfers[0]["target"] == "agent02"


def test_a_transfer_nobody_answers_puts_the_caller_back_in_the_queue(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client], outside: Phone
) -> None:
    agent_http, colleague_http = agents
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        colleague_phone = stack.enter_context(started(line, "agent02"))
        ready(agent_http)
        call = connect(line, stack, agent_http, agent_phone)
        url = f"/api/voice/live/{call.live_id}"

        passed = agent_http.post(f"{url}/transfer", json={"target": "010 6709 1234"})
        assert passed.status_code == 200, passed.text
        agent_phone.wait_for("ended", 10, leg=call.agent.leg)
        agent_http.post("/api/routing/me/not-ready", json={"reason": "other"})  # so the colleague is next
        incoming = outside.wait_for("incoming", 20)
        assert incoming["dialled"] == "01067091234" and "sip:8585@" in incoming["from"]  # the line's number shown
        outside.send(cmd="answer", leg=incoming["leg"], code=486)  # busy

        ready(colleague_http)  # the caller is back in the queue, and the next agent takes the call
        colleague = joined(colleague_phone, COLLEAGUE_HZ, line.var)
        assert live_call(colleague_http)["talker"] == "agent"
        heard = call.heard([call.caller, colleague], "recalled")
        assert heard[CALLER_HZ][COLLEAGUE_HZ] > HEARD and heard[COLLEAGUE_HZ][CALLER_HZ] > HEARD
        call.caller.phone.send(cmd="hangup", leg="out")
        colleague_phone.wait_for("ended", 10, leg=colleague.leg)

    record = line.last_call(supervisor, after=before)
    happened = [event["event"] for event in record["events"]]
    last_connected = max(i for i, event in enumerate(happened) if event == "connected")
    assert happened.index("transferring") < happened.index("transfer_unanswered") < last_connected
    assert happened.count("queued") == 2 and happened.count("connected") == 2
    assert next(e for e in record["events"] if e["event"] == "transferring")["target"] == "outside"
    assert record["end_reason"] == "caller_hung_up"


def test_an_agent_passes_the_caller_to_an_outside_number(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client], outside: Phone
) -> None:
    agent_http, _ = agents
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        ready(agent_http)
        call = connect(line, stack, agent_http, agent_phone)

        passed = agent_http.post(f"/api/voice/live/{call.live_id}/transfer", json={"target": "13900990002"})
        assert passed.status_code == 200, passed.text
        _, there = answered_outside(outside, OUTSIDE_HZ)
        there.play(line.var)
        heard = call.heard([call.caller, there], "outside")
        assert heard[CALLER_HZ][OUTSIDE_HZ] > HEARD and heard[OUTSIDE_HZ][CALLER_HZ] > HEARD
        call.caller.phone.send(cmd="hangup", leg="out")
        outside.wait_for("ended", 10, leg=there.leg)

    record = line.last_call(supervisor, after=before)
    assert record["end_reason"] == "caller_hung_up" and record["recording_seconds"]


def test_the_ivr_passes_a_caller_on_to_an_outside_number(line: Line, supervisor: httpx.Client, outside: Phone) -> None:
    """A second number (8586) whose flow says one sentence and passes the caller to an outside number."""
    flow = {"start": "hello", "nodes": [
        {"type": "play", "id": "hello", "prompt": {"text": "请稍候，为您转接。"}, "next": "out"},
        {"type": "transfer", "id": "out", "number": "13900990003"},
    ]}  # fmt: skip
    line.publish_flow("转接外线 (test)", "8586", flow)
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        caller_phone = stack.enter_context(started(line, "patient"))
        caller_phone.send(cmd="dial", leg="out", uri=f"sip:8586@127.0.0.1:{line.front_port}")
        caller_phone.wait_for("answered", 10, leg="out")
        caller = Party(caller_phone, "out", CALLER_HZ)
        caller.play(line.var)
        incoming, there = answered_outside(outside, OUTSIDE_HZ)
        assert incoming["dialled"] == "13900990003" and "sip:8585@" in incoming["from"]  # the line's number shown
        there.play(line.var)
        heard = Call(line, "ivr-out", caller, there).heard([caller, there], "ivr-out")
        assert heard[CALLER_HZ][OUTSIDE_HZ] > HEARD and heard[OUTSIDE_HZ][CALLER_HZ] > HEARD
        outside.send(cmd="hangup", leg=there.leg)
        caller_phone.wait_for("ended", 10, leg="out")

    record = line.last_call(supervisor, after=before)
    assert record["end_reason"] == "transferee_hung_up" and record["dialled"] == "8586"
    assert "forwarding" in [event["event"] for event in record["events"]] and record["recording_seconds"]
