"""Supervision and the agent bar on real calls. A test phone calls 8585 playing a steady tone, the
agent's phone answers playing another, a supervisor's or colleague's phone joins playing its own tone;
each phone records what it hears, and the tones in those recordings prove who heard whom."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest
from phone_line import AGENT_HZ, CALLER_HZ, Line, call_in, connect, joined, live_call, ready, started
from sip import tools_missing

pytestmark = pytest.mark.skipif(bool(tools_missing()), reason=f"missing {tools_missing()}")
SUPERVISOR_HZ, COLLEAGUE_HZ = 1500, 1900  # far from the hold music's notes, like the caller's and the agent's
HEARD, UNHEARD = 1000.0, 500.0  # alone a tone comes through at about 9,700; mixed with others, 1,800-4,500


def test_a_supervisor_listens_whispers_barges_in_and_takes_over(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client]
) -> None:
    agent_http, other_agent = agents
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        boss_phone = stack.enter_context(started(line, "supervisor1"))
        ready(agent_http)
        call = connect(line, stack, agent_http, agent_phone)
        url = f"/api/voice/live/{call.live_id}"

        # nobody else's business: another agent neither sees nor touches it; bad input is refused
        assert other_agent.get("/api/voice/live").json() == []
        assert other_agent.post(f"{url}/hold", json={"on": True}).json()["error_id"] == "permission_denied"
        assert agent_http.post(f"{url}/supervise", json={"mode": "listen"}).status_code == 403
        assert supervisor.post(f"{url}/supervise", json={"mode": "shout"}).status_code == 422
        assert supervisor.post(f"/api/voice/live/{'0' * 16}/supervise", json={"mode": "listen"}).status_code == 404
        assert supervisor.post("/api/voice/live/nothex/hold", json={"on": True}).status_code == 422

        listening = supervisor.post(f"{url}/supervise", json={"mode": "listen"})
        assert listening.status_code == 200, listening.text
        assert listening.json()["watch"] == "listen" and listening.json()["talker"] == "agent"
        boss = joined(boss_phone, SUPERVISOR_HZ, line.var)
        parties = [call.caller, call.agent, boss]
        with line.client("admin") as other_supervisor:  # one supervisor at a time; the other is refused
            second = other_supervisor.post(f"{url}/supervise", json={"mode": "barge"})
            assert second.status_code == 409 and second.json()["error_id"] == "supervised"

        heard = call.heard(parties, "listen")
        assert heard[SUPERVISOR_HZ][CALLER_HZ] > HEARD and heard[SUPERVISOR_HZ][AGENT_HZ] > HEARD
        assert heard[CALLER_HZ][AGENT_HZ] > HEARD and heard[AGENT_HZ][CALLER_HZ] > HEARD
        assert heard[CALLER_HZ][SUPERVISOR_HZ] < UNHEARD and heard[AGENT_HZ][SUPERVISOR_HZ] < UNHEARD

        assert supervisor.post(f"{url}/supervise", json={"mode": "whisper"}).json()["watch"] == "whisper"
        heard = call.heard(parties, "whisper")
        assert heard[AGENT_HZ][SUPERVISOR_HZ] > HEARD and heard[CALLER_HZ][SUPERVISOR_HZ] < UNHEARD

        assert supervisor.post(f"{url}/supervise", json={"mode": "barge"}).json()["watch"] == "barge"
        heard = call.heard(parties, "barge")
        assert heard[CALLER_HZ][SUPERVISOR_HZ] > HEARD and heard[AGENT_HZ][SUPERVISOR_HZ] > HEARD

        assert agent_http.post(f"{url}/hold", json={"on": True}).json()["hold"] is True
        heard = call.heard(parties, "hold")
        assert heard[CALLER_HZ][AGENT_HZ] < UNHEARD and heard[AGENT_HZ][CALLER_HZ] < UNHEARD
        assert agent_http.post(f"{url}/hold", json={"on": False}).json()["hold"] is False

        taken = supervisor.post(f"{url}/supervise", json={"mode": "take_over"})
        assert taken.status_code == 200 and taken.json()["talker"] == "supervisor", taken.text
        agent_phone.wait_for("ended", 10, leg=call.agent.leg)
        heard = call.heard([call.caller, boss], "taken")
        assert heard[CALLER_HZ][SUPERVISOR_HZ] > HEARD and heard[SUPERVISOR_HZ][CALLER_HZ] > HEARD
        assert agent_http.get("/api/voice/live").json() == []  # the agent is free of it
        assert agent_http.post(f"{url}/hold", json={"on": True}).status_code == 403

        ended = supervisor.post(f"{url}/hangup")
        assert ended.status_code == 200, ended.text
        call.caller.phone.wait_for("ended", 10, leg="out")

    record = line.last_call(supervisor, after=before)
    assert record["end_reason"] == "ended_by_supervisor" and record["agent_id"]
    happened = [event["event"] for event in record["events"]]
    for step in ("listen", "whisper", "barge", "held", "resumed", "take_over", "ended_by_supervisor"):
        assert step in happened
    audit = supervisor.get("/api/admin/audit", params={"action": "voice.supervise"})
    if audit.status_code == 200:
        rows = audit.json().get("items", audit.json())
        assert {row["after"]["mode"] for row in rows if row.get("after")} >= {"listen", "whisper", "take_over"}


def test_an_agent_consults_a_colleague_joins_all_three_then_hands_the_caller_over(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client]
) -> None:
    agent_http, _ = agents
    before = line.last_id(supervisor)
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        colleague_phone = stack.enter_context(started(line, "agent02"))
        ready(agent_http)
        call = connect(line, stack, agent_http, agent_phone)
        url = f"/api/voice/live/{call.live_id}"

        unknown = agent_http.post(f"{url}/consult", json={"target": "nobody-here"})
        assert unknown.status_code == 422 and unknown.json()["error_id"] == "invalid_input"
        assert agent_http.post(f"{url}/consult/end", json={"how": "complete"}).json()["error_id"] == "no_consult"

        consulting = agent_http.post(f"{url}/consult", json={"target": "agent02"})
        assert consulting.status_code == 200 and consulting.json()["third"] == "consult", consulting.text
        colleague = joined(colleague_phone, COLLEAGUE_HZ, line.var)
        parties = [call.caller, call.agent, colleague]
        resumed = agent_http.post(f"{url}/hold", json={"on": False})  # would let the caller hear the colleague
        assert resumed.status_code == 409 and resumed.json()["error_id"] == "consult_on"
        heard = call.heard(parties, "consult")
        assert heard[AGENT_HZ][COLLEAGUE_HZ] > HEARD and heard[COLLEAGUE_HZ][AGENT_HZ] > HEARD
        assert heard[CALLER_HZ][AGENT_HZ] < UNHEARD and heard[CALLER_HZ][COLLEAGUE_HZ] < UNHEARD
        assert heard[COLLEAGUE_HZ][CALLER_HZ] < UNHEARD

        assert agent_http.post(f"{url}/consult/end", json={"how": "conference"}).json()["third"] == "conference"
        heard = call.heard(parties, "three")
        assert heard[CALLER_HZ][COLLEAGUE_HZ] > HEARD and heard[CALLER_HZ][AGENT_HZ] > HEARD
        assert heard[COLLEAGUE_HZ][CALLER_HZ] > HEARD

        handed = agent_http.post(f"{url}/consult/end", json={"how": "complete"})
        assert handed.status_code == 200 and handed.json()["talker"] == "third", handed.text
        agent_phone.wait_for("ended", 10, leg=call.agent.leg)
        heard = call.heard([call.caller, colleague], "handed")
        assert heard[CALLER_HZ][COLLEAGUE_HZ] > HEARD and heard[COLLEAGUE_HZ][CALLER_HZ] > HEARD

        colleague_phone.send(cmd="hangup", leg=colleague.leg)
        call.caller.phone.wait_for("ended", 10, leg="out")

    record = line.last_call(supervisor, after=before)
    assert record["end_reason"] == "transferee_hung_up"
    happened = [event["event"] for event in record["events"]]
    assert happened.index("consulting") < happened.index("consult_conference") < happened.index("consult_complete")


def test_a_blind_transfer_puts_the_caller_back_in_a_queue_for_another_agent(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client]
) -> None:
    agent_http, colleague_http = agents
    before = line.last_id(supervisor)
    general = next(q for q in supervisor.get("/api/routing/queues").json() if q["code"] == "GENERAL")
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01"))
        colleague_phone = stack.enter_context(started(line, "agent02"))
        ready(agent_http)
        call = connect(line, stack, agent_http, agent_phone)
        url = f"/api/voice/live/{call.live_id}"

        assert agent_http.post(f"{url}/transfer", json={"queue_id": 999999}).status_code == 404
        moved = agent_http.post(f"{url}/transfer", json={"queue_id": general["id"]})
        assert moved.status_code == 200, moved.text
        agent_phone.wait_for("ended", 10, leg=call.agent.leg)
        ready(colleague_http)
        colleague = joined(colleague_phone, COLLEAGUE_HZ, line.var)
        live_call(colleague_http)
        heard = call.heard([call.caller, colleague], "moved")
        assert heard[CALLER_HZ][COLLEAGUE_HZ] > HEARD and heard[COLLEAGUE_HZ][CALLER_HZ] > HEARD
        call.caller.phone.send(cmd="hangup", leg="out")

    record = line.last_call(supervisor, after=before)
    happened = [event["event"] for event in record["events"]]
    assert happened.count("connected") == 2 and "transferred" in happened
    assert record["end_reason"] == "caller_hung_up"


def test_an_agent_who_accepts_in_the_browser_then_picks_up_the_phone_is_connected(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client]
) -> None:
    agent_http, _ = agents
    with ExitStack() as stack:
        agent_phone = stack.enter_context(started(line, "agent01", auto_answer=False))
        ready(agent_http)
        caller_phone = call_in(line, stack)
        ringing = agent_phone.wait_for("incoming", 90)
        offer = agent_http.get("/api/routing/me").json()["offer"]
        assert agent_http.post(f"/api/routing/tasks/{offer['task_id']}/accept").status_code == 200
        agent_phone.send(cmd="answer", leg=ringing["leg"])
        talking = live_call(agent_http)
        assert talking["talker"] == "agent" and talking["task_id"] == offer["task_id"]
        caller_phone.send(cmd="hangup", leg="out")
        agent_phone.wait_for("ended", 10, leg=ringing["leg"])
