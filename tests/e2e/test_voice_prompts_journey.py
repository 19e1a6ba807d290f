"""Recorded prompts in a real browser: the administrator uploads a WAV (a file that is not one is refused
in the dialog), hears it in the list, chooses it for a flow's greeting in the editor (a player appears;
the words are kept), sees the list name the flow that plays it with Delete turned off, and renames it."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from helpers import sine_wav

NAME = "E2E 院长问候"
FLOW = {"start": "welcome", "nodes": [
    {"type": "play", "id": "welcome", "prompt": {"text": "您好，欢迎致电。"}, "next": "goodbye"},
    {"type": "hangup", "id": "goodbye"},
]}  # fmt: skip


def wav_file(name: str, data: bytes) -> dict[str, object]:
    return {"name": name, "mimeType": "audio/wav", "buffer": data}


def test_an_administrator_uploads_a_recording_and_a_flow_plays_it(admin: Page, admin_api: httpx.Client) -> None:
    admin.goto("/voice/prompts")
    admin.get_by_role("button", name="Upload a recording").first.click()
    dialog = admin.get_by_role("dialog")
    dialog.get_by_label("Name").fill(NAME)
    dialog.get_by_label("What it says").fill("您好，欢迎致电患者服务热线。")
    dialog.get_by_label("WAV file").set_input_files(wav_file("greeting.mp3", b"ID3 not a wav"))
    dialog.get_by_role("button", name="Upload").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Only WAV recordings can be uploaded.")
    dialog.get_by_label("WAV file").set_input_files(wav_file("greeting.wav", sine_wav(1.5)))
    dialog.get_by_role("button", name="Upload").click()

    row = admin.get_by_test_id("prompt-list").locator("tr", has_text=NAME)
    expect(row).to_contain_text("1.5 s")
    expect(row).to_contain_text("No flow")
    expect(row.get_by_label(f"Listen to {NAME}")).to_have_attribute("src", re.compile(r"/audio$"))
    prompt_id = int(row.get_attribute("data-prompt-id") or 0)

    created = admin_api.post("/api/voice/flows", json={"name": "E2E 录音流程", "draft": FLOW})
    assert created.status_code == 201, created.text
    admin.goto(f"/voice/flows/{created.json()['id']}")
    welcome = admin.locator("#node-welcome")
    player = welcome.locator("audio.vf-player")
    expect(player).to_be_hidden()
    welcome.get_by_label("Recorded prompt").select_option(label=f"{NAME} (1.5 s)")
    expect(player).to_be_visible()
    admin.keyboard.press("Control+s")
    expect(admin.get_by_test_id("save-state")).to_have_text("All changes saved")
    draft = admin_api.get(f"/api/voice/flows/{created.json()['id']}").json()["draft"]
    assert draft["nodes"][0]["prompt"] == {"text": "您好，欢迎致电。", "recorded_id": prompt_id}

    admin.goto("/voice/prompts")
    row = admin.locator(f'tr[data-prompt-id="{prompt_id}"]')
    expect(row).to_contain_text("E2E 录音流程")
    expect(row.get_by_role("button", name="Delete")).to_be_disabled()
    row.get_by_role("button", name="Edit").click()
    dialog = admin.get_by_role("dialog")
    dialog.get_by_label("Name").fill(NAME + " 新")
    dialog.get_by_role("button", name="Save").click()
    expect(admin.locator(f'tr[data-prompt-id="{prompt_id}"]')).to_contain_text(NAME + " 新")
