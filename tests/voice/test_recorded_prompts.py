"""Recorded prompts: an uploaded WAV is converted to the telephone's 8 kHz mono, listed with the flows that
play it, heard in the browser, replaced, renamed and deleted (not while a flow plays it); a flow names
one instead of words, and a caller on the real line hears it."""

from __future__ import annotations

import io
import time
import wave
from contextlib import ExitStack
from typing import Any

import pytest
from phone_line import Line, started
from sip import tone_level, tools_missing
from sqlalchemy import select

from helpers import Client, assert_error, sine_wav
from patientline.core.audit import AuditEntry

PROMPT_HZ = 700


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


async def upload(client: Client, name: str, raw: bytes, words: str = "") -> Any:
    return await client.post("/api/voice/prompts", data={"name": name, "words": words},
                             files={"file": ("greeting.wav", raw, "audio/wav")})  # fmt: skip


def playing(prompt_id: int) -> dict[str, Any]:
    return {"start": "hello", "nodes": [
        {"type": "play", "id": "hello", "prompt": {"recorded_id": prompt_id}, "next": "bye"},
        {"type": "hangup", "id": "bye", "prompt": {"text": "再见。"}},
    ]}  # fmt: skip


async def test_an_upload_is_converted_to_the_telephones_rate_and_heard_back(admin: Client) -> None:
    created = ok(await upload(admin, "院长问候", sine_wav(1.5), words="您好，欢迎致电。"), 201)
    assert created["seconds"] == 1.5 and created["filename"] == "greeting.wav" and created["played_by"] == []
    heard = await admin.get(created["audio_url"])
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(heard.content)) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (8000, 1, 2)
        assert reader.getnframes() == 12000
    listed = ok(await admin.get("/api/voice/prompts"))
    assert [(p["name"], p["words"]) for p in listed] == [("院长问候", "您好，欢迎致电。")]


async def test_bad_uploads_are_refused_and_nothing_is_kept(admin: Client) -> None:
    assert_error(await upload(admin, "x", b"ID3 an mp3 file"), 422, "not_wav")
    broken = sine_wav(1.0)[:44].replace(b"WAVEfmt ", b"WAVEfmX ")
    refused = assert_error(await upload(admin, "x", broken + b"\0" * 100), 422, "unreadable_audio")
    assert refused["message"]
    assert_error(await upload(admin, "x", sine_wav(0.05)), 422, "recording_empty")
    assert_error(await upload(admin, "x", sine_wav(301, rate=8000, channels=1)), 422, "recording_too_long")
    assert_error(await upload(admin, "x", b"RIFF" + b"\0" * (8 * 1024 * 1024 + 10)), 413)
    assert_error(await upload(admin, "", sine_wav(1.0)), 422)
    assert_error(await upload(admin, "x" * 101, sine_wav(1.0)), 422)
    assert_error(await admin.post("/api/voice/prompts", data={"name": "x"}), 422)
    assert ok(await admin.get("/api/voice/prompts")) == []
    ok(await upload(admin, "x", sine_wav(1.0)), 201)
    assert_error(await upload(admin, "x", sine_wav(1.0)), 409, "prompt_taken")


async def test_a_flow_plays_a_recording_that_must_exist_and_cannot_be_deleted(admin: Client, db: Any) -> None:
    prompt = ok(await upload(admin, "问候", sine_wav(1.0)), 201)
    flow = ok(await admin.post("/api/voice/flows", json={"name": "录音线", "draft": playing(prompt["id"] + 50)}), 201)
    assert [(p["node"], p["field"], p["problem"]) for p in flow["problems"]] == [("hello", "prompt", "unknown")]
    flow = ok(await admin.patch(f"/api/voice/flows/{flow['id']}", json={"version": 1, "draft": playing(prompt["id"])}))
    assert flow["problems"] == []
    ok(await admin.post(f"/api/voice/flows/{flow['id']}/publish", json={"version": 2}), 201)
    assert ok(await admin.get("/api/voice/prompts"))[0]["played_by"] == ["录音线"]
    in_use = assert_error(await admin.delete(f"/api/voice/prompts/{prompt['id']}?version=1"), 409, "prompt_in_use")
    assert in_use["details"] == {"flows": ["录音线"]}

    replaced = await admin.put(f"/api/voice/prompts/{prompt['id']}/audio", data={"version": "1"},
                               files={"file": ("new.wav", sine_wav(2.0), "audio/wav")})  # fmt: skip
    assert ok(replaced)["seconds"] == 2.0 and replaced.json()["version"] == 2
    stale = await admin.put(f"/api/voice/prompts/{prompt['id']}/audio", data={"version": "1"},
                            files={"file": ("new.wav", sine_wav(2.0), "audio/wav")})  # fmt: skip
    assert_error(stale, 409, "stale_version")
    renamed = ok(await admin.patch(f"/api/voice/prompts/{prompt['id']}", json={"version": 2, "name": "新问候"}))
    assert renamed["name"] == "新问候" and renamed["played_by"] == ["录音线"]

    text_again = {"start": "bye", "nodes": [{"type": "hangup", "id": "bye", "prompt": {"text": "再见。"}}]}
    ok(await admin.patch(f"/api/voice/flows/{flow['id']}", json={"version": 3, "draft": text_again}))
    ok(await admin.post(f"/api/voice/flows/{flow['id']}/publish", json={"version": 4}), 201)
    ok(await admin.delete(f"/api/voice/prompts/{prompt['id']}?version=3"), 204)
    gone = assert_error(await admin.post(f"/api/voice/flows/{flow['id']}/live", json={"version": 5, "number": 1}),
                        422, "version_not_playable")  # fmt: skip
    assert gone["details"][0]["node"] == "hello"
    assert_error(await admin.get(f"/api/voice/prompts/{prompt['id']}/audio"), 404)
    async with db.sessions() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "voice_prompt")))
    assert actions == ["voice.prompt.upload", "voice.prompt.replace", "voice.prompt.update", "voice.prompt.delete"]


def test_a_prompt_needs_words_or_a_recording() -> None:
    from pydantic import ValidationError

    from patientline.voice.flows import Prompt

    with pytest.raises(ValidationError):
        Prompt.model_validate({})
    assert Prompt.model_validate({"recorded_id": 3}).text is None


async def test_only_those_who_configure_voice_upload_or_hear_prompts(as_user: Any, admin: Client) -> None:
    prompt = ok(await upload(admin, "问候", sine_wav(1.0)), 201)
    async with as_user("agent01", ["agent"]) as agent:
        assert_error(await upload(agent, "x", sine_wav(1.0)), 403)
        assert_error(await agent.get("/api/voice/prompts"), 403)
        assert_error(await agent.get(prompt["audio_url"]), 403)
        assert_error(await agent.delete(f"/api/voice/prompts/{prompt['id']}?version=1"), 403)


@pytest.mark.skipif(bool(tools_missing()), reason=f"needs {', '.join(tools_missing())}")
def test_a_caller_hears_the_recorded_prompt(line: Line) -> None:
    """A third number (8587) whose flow plays an uploaded recording: the caller hears its tone."""
    with line.client("admin") as admin:
        prompt = admin.post("/api/voice/prompts", data={"name": "录音问候 (test)"},
                            files={"file": ("tone.wav", sine_wav(6.0, hertz=PROMPT_HZ), "audio/wav")})  # fmt: skip
        assert prompt.status_code == 201, prompt.text
        line.publish_flow("录音 (test)", "8587", playing(prompt.json()["id"]))
        before = line.last_id(admin)
        with ExitStack() as stack:
            caller = stack.enter_context(started(line, "patient"))
            caller.send(cmd="dial", leg="out", uri=f"sip:8587@127.0.0.1:{line.front_port}")
            caller.wait_for("answered", 10, leg="out")
            time.sleep(0.5)
            heard = caller.heard("out", 3.0, line.var / "recorded-prompt.wav")
            assert tone_level(heard, PROMPT_HZ) > 1000.0
            caller.wait_for("ended", 20, leg="out")
        record = line.last_call(admin, after=before)
    assert record["dialled"] == "8587" and record["ivr"]["path"] == ["hello", "bye"]
    assert record["end_reason"] == "ivr_goodbye"
