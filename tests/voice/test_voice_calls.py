"""Real calls through the phone line: `patientline serve` with the voice role (Kamailio, media workers),
sipp as the caller (G.711 speech, RFC 2833 keys), a test phone registered as agent01 that answers and
records what it hears. The demo hospital's 8585 flow is what callers meet."""

from __future__ import annotations

import httpx
import pytest
from phone_line import SPEECH_LEVEL, Line
from sip import keys, loudness, pause, refused_scenario, scenario, speech, tools_missing

pytestmark = pytest.mark.skipif(bool(tools_missing()), reason=f"missing {tools_missing()}")


def test_a_caller_keys_0_queues_and_talks_to_the_agent_whose_phone_answers(
    line: Line, supervisor: httpx.Client
) -> None:
    before = line.last_id(supervisor)
    phone = line.phone("agent01")
    with line.client("agent01") as agent:
        assert agent.post("/api/routing/me/login").status_code == 200
        assert agent.post("/api/routing/me/ready").status_code == 200
        try:
            steps = pause(1000) + keys("0") + pause(8000) + speech() + pause(1000)
            assert line.caller().call(scenario(steps), timeout_s=60) == 0
            incoming = phone.wait_for("incoming", 5)
            assert incoming["from"].startswith("<sip:worker@")
        finally:
            phone.stop()
        call = line.last_call(supervisor, after=before)
        assert call["outcome"] == "queue" and call["ivr"]["keys"] == ["0"]
        assert call["ivr"]["path"][:2] == ["chime", "welcome"]
        assert call["ivr"]["path"][-1] == "general"  # by day or at night
        assert call["connected_at"] and call["agent_id"] and call["contact_id"]
        assert [e["event"] for e in call["events"]][:3] == ["queued", "ringing", "connected"]
        assert call["recording_seconds"] and call["recording_seconds"] > 10
        # the agent heard the caller's speech, in the recording of the whole call as well
        recording = agent.get(f"/api/voice/calls/{call['id']}/recording")
        assert recording.status_code == 200 and recording.content[:4] == b"RIFF"
        wav = line.var / "heard.wav"
        wav.write_bytes(recording.content)
        assert loudness(wav, call["recording_seconds"] - 7, call["recording_seconds"] - 2) > SPEECH_LEVEL
        agent.post("/api/routing/me/not-ready", json={"reason": "other"})
    audit = supervisor.get("/api/admin/audit", params={"action": "voice.recording.play"})
    if audit.status_code == 200:
        assert any(row.get("action") == "voice.recording.play" for row in audit.json().get("items", audit.json()))


def test_a_caller_who_hangs_up_in_the_queue_is_an_abandon_and_no_task_is_left(
    line: Line, supervisor: httpx.Client
) -> None:
    before = line.last_id(supervisor)
    steps = pause(1000) + keys("0") + pause(24000)  # general enquiries (day and night), where nobody is ready
    assert line.caller().call(scenario(steps), timeout_s=40) == 0
    call = line.last_call(supervisor, after=before)
    assert call["outcome"] == "queue" and call["end_reason"] == "caller_hung_up"
    assert call["connected_at"] is None and call["agent_id"] is None
    task_id = call["routing_task_id"]
    waiting = supervisor.get(f"/api/routing/queues/{call['queue_id']}/waiting").json()
    assert all(task["id"] != task_id for task in waiting)


def test_an_offer_without_a_common_codec_is_refused_with_488(line: Line, supervisor: httpx.Client) -> None:
    gsm_only = ("3", "a=rtpmap:3 GSM/8000")
    # more refusals than the line has workers: a refused call must not keep its worker taken
    for _ in range(3):
        assert line.caller().call(refused_scenario(488, media=gsm_only), timeout_s=20) == 0


def test_a_number_with_no_flow_is_not_answered(line: Line) -> None:
    assert line.caller().call(refused_scenario(404), number="9999", timeout_s=20) == 0


def test_an_agent_sees_only_their_own_calls_and_recordings(line: Line, supervisor: httpx.Client) -> None:
    calls = supervisor.get("/api/voice/calls").json()
    assert calls, "the calls above are in the log"
    with line.client("agent02") as other:
        me = other.get("/api/auth/me").json()["id"]
        assert all(call["agent_id"] == me for call in other.get("/api/voice/calls").json())
        not_theirs = next(call for call in calls if call["agent_id"] != me)
        refused = other.get(f"/api/voice/calls/{not_theirs['id']}/recording")
        assert refused.status_code == 403 and refused.json()["error_id"] == "permission_denied"
    assert supervisor.get("/api/voice/calls/999999/recording").status_code == 404
