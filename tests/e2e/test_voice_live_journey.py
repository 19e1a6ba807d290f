"""Live calls, the call log and the agent bar's call controls in a real browser.

The test server runs no phone line (no voice role), so:

- the supervisor opens Live calls from the navigation and is told the line is not running here; the
  call log lists a call written straight into the database (as the line writes it when a call ends) with
  a small WAV file in the recordings directory: Play puts a player with the recording's URL in place of
  the button, the recording loads, and the playback is audited;
- the supervisor's table and buttons, and the agent bar's call controls on a real voice task in hand,
  are driven against /api/voice/live answered in the browser (Playwright's routing) with the shapes the
  API documents; the calls themselves are tested over SIP in tests/voice/test_voice_calls.py and
  test_voice_supervision.py. Without that stand-in the bar asks the real API, hears 409 voice_off and
  shows no call controls."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from e2e_helpers import OpenPage, api_login, ensure_user
from playwright.sync_api import Page, Request, Route, expect

from patientline.core.config import Settings
from patientline.voice.plant import recordings_dir

Server = Any

AGENT, AGENT_PASSWORD = "vl.agent", "Answers-Calls-2031"
SUPERVISOR, SUPERVISOR_PASSWORD = "vl.super", "Watches-Calls-2031"
LIVE_ID = "00112233aabbccdd"
CALL_COLUMNS = ("sip_call_id", "direction", "dialled", "caller", "worker", "started_at", "connected_at",
                "ended_at", "outcome", "end_reason", "ivr", "events", "queue_id", "agent_id", "recording",
                "recording_seconds")  # fmt: skip
JSON_COLUMNS = ("ivr", "events")


def setup(server: Server, admin_api: httpx.Client) -> dict[str, int]:
    """Two queues the agent answers (no wrap-up), the agent and a supervisor; made as the administrator."""
    if "vl" in server.state:
        return dict(server.state["vl"])
    ensure_user(server, admin_api, AGENT, AGENT_PASSWORD)
    ensure_user(server, admin_api, SUPERVISOR, SUPERVISOR_PASSWORD, roles=("supervisor",))
    users = {u["username"]: u["id"] for u in admin_api.get("/api/users", params={"q": "vl.", "limit": 500}).json()}
    ids = {"agent": int(users[AGENT]), "supervisor": int(users[SUPERVISOR])}
    for key, code, name in (("clinic", "VL-OPD", "门诊咨询 (vl e2e)"), ("insurance", "VL-INS", "医保咨询 (vl e2e)")):
        queue = admin_api.post("/api/routing/queues", json={"code": code, "name": name, "wrap_up": "none"})
        assert queue.status_code == 201, queue.text
        ids[key] = int(queue.json()["id"])
        members = admin_api.put(f"/api/routing/queues/{ids[key]}/members", json=[{"user_id": ids["agent"], "tier": 1}])
        assert members.status_code == 200, members.text
    server.state["vl"] = ids
    return ids


@contextmanager
def logged_in(server: Server, open_page: OpenPage, username: str, password: str) -> Iterator[tuple[Page, httpx.Client]]:
    with api_login(server, username, password) as http:
        yield open_page(username, cookies=[{"name": "pl_session", "value": http.cookies["pl_session"]}]), http


def write_call(server: Server, values: dict[str, Any]) -> int:
    """A row of voice_calls, as the line writes it when a call ends; answers its id."""
    url = os.environ.get("PATIENTLINE_E2E_DATABASE_URL", "")
    names = ", ".join(CALL_COLUMNS)
    if url.startswith("postgresql"):
        import asyncpg

        found: list[int] = []
        row = [json.dumps(v) if k in JSON_COLUMNS else v for k, v in values.items()]

        async def insert() -> None:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                marks = ", ".join(f"${n}" for n in range(1, len(CALL_COLUMNS) + 1))
                insert = f"INSERT INTO voice_calls ({names}) VALUES ({marks}) RETURNING id"  # noqa: S608
                found.append(await conn.fetchval(insert, *row))
            finally:
                await conn.close()

        worker = threading.Thread(target=lambda: asyncio.run(insert()))  # Playwright owns this thread's loop
        worker.start()
        worker.join()
        return found[0]
    stored = "%Y-%m-%d %H:%M:%S.%f"  # naive UTC, as the app keeps times in SQLite
    row = [json.dumps(v) if k in JSON_COLUMNS else v for k, v in values.items()]
    row = [v.astimezone(UTC).strftime(stored) if isinstance(v, datetime) else v for v in row]
    with sqlite3.connect(Path(server.log).parent / "patientline.db", timeout=10) as conn:
        cursor = conn.execute(f"INSERT INTO voice_calls ({names}) VALUES ({', '.join('?' * len(row))})", row)  # noqa: S608
        return int(cursor.lastrowid or 0)


def write_recording(server: Server, relative: str) -> None:
    """One second of a quiet 440 Hz tone, 8 kHz mono 16-bit, as the line records."""
    path = recordings_dir(Settings(var_dir=Path(server.log).parent, _env_file=None)) / relative  # type: ignore[call-arg]
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = bytearray()
    for n in range(8000):
        sample = 2000 if (n // 9) % 2 else -2000
        frames += sample.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(frames))


def test_a_supervisor_finds_the_line_off_and_plays_a_recording(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    ids = setup(server, admin_api)
    started = datetime.now(UTC) - timedelta(minutes=5)
    relative = "2026/11/24/101500-e2e.wav"
    write_recording(server, relative)
    call_id = write_call(server, {
        "sip_call_id": "vl-e2e-1", "direction": "inbound", "dialled": "8585", "caller": "+8613912345678",
        "worker": "w1", "started_at": started, "connected_at": started + timedelta(seconds=20),
        "ended_at": started + timedelta(seconds=95), "outcome": "queue", "end_reason": "agent_hung_up",
        "ivr": {"path": ["welcome", "menu"]}, "events": [], "queue_id": ids["clinic"], "agent_id": ids["agent"],
        "recording": relative, "recording_seconds": 1.0,
    })  # fmt: skip

    with logged_in(server, open_page, SUPERVISOR, SUPERVISOR_PASSWORD) as (page, _):
        page.goto("/")
        page.locator(".sidenav").get_by_role("link", name="Live calls").click()
        expect(page).to_have_url(re.compile(r"/voice/live$"))
        off = page.get_by_test_id("line-off")
        expect(off).to_be_visible()
        expect(off).to_contain_text("The phone line is not running on this server.")
        expect(page.get_by_test_id("live-empty")).to_be_hidden()
        expect(page.get_by_test_id("live-calls")).to_be_hidden()
        expect(page.get_by_text("registered to the line as vl.super")).to_be_visible()

        page.locator(".sidenav").get_by_role("link", name="Call log").click()
        expect(page).to_have_url(re.compile(r"/voice/calls$"))
        row = page.locator(f'tr[data-call-id="{call_id}"]')
        expect(row).to_contain_text("139****5678")
        expect(row).to_contain_text("The agent hung up")
        expect(row).to_contain_text("门诊咨询 (vl e2e)")
        expect(row).to_contain_text("Vl.Agent")
        expect(row).to_contain_text("1:35")
        row.get_by_role("button", name=re.compile("Play")).click()
        audio = row.locator("audio")
        expect(audio).to_have_attribute("src", f"/api/voice/calls/{call_id}/recording")
        expect(audio).to_have_attribute("controls", "")
        page.wait_for_function(f"document.querySelector('tr[data-call-id=\"{call_id}\"] audio').readyState > 0")
        assert audio.evaluate("el => el.error === null && el.duration > 0.9 && el.duration < 1.1")
        expect(row.get_by_role("alert")).to_have_count(0)

    audit = admin_api.get("/api/audit", params={"action": "voice.recording.play", "limit": 50})
    assert audit.status_code == 200, audit.text
    entries = [e for e in audit.json() if str(e.get("target_id")) == str(call_id)]
    assert entries, audit.json()  # the playback is audited


# ---- the live-call API answered in the browser ------------------------------------------------------------


class LiveLine:
    """A stand-in for /api/voice/live: one call, changed by the controls as the API documents."""

    def __init__(self, call: dict[str, Any]) -> None:
        self.call = call
        self.posts: list[tuple[str, Any]] = []
        self.refuse: dict[str, dict[str, Any]] = {}  # step -> error answer

    def handle(self, route: Route, request: Request) -> None:
        path = urlparse(request.url).path
        if request.method == "GET":
            route.fulfill(json=[self.call] if self.call["stage"] != "ended" else [])
            return
        step = path.split(f"/{LIVE_ID}/", 1)[1]
        body = request.post_data_json
        self.posts.append((step, body))
        if step in self.refuse:
            route.fulfill(status=409, json=self.refuse.pop(step))
            return
        self.apply(step, body or {})
        route.fulfill(json=self.call)

    def apply(self, step: str, body: dict[str, Any]) -> None:
        call = self.call
        if step == "hold":
            call["hold"] = body["on"]
        elif step == "consult":
            call["hold"], call["third"] = True, "consult"
        elif step == "consult/end":
            how = body["how"]
            call["third"] = "conference" if how == "conference" else None
            call["hold"] = False
            if how == "complete":
                call["talker"], call["agent_id"] = "third", None
        elif step == "supervise":
            mode = body["mode"]
            if mode == "take_over":
                call["talker"], call["watch"], call["agent_id"] = "supervisor", None, None
            else:
                call["watch"] = None if mode == "leave" else mode
        elif step in ("hangup", "transfer"):
            call["stage"] = "ended"


def live_call(**values: Any) -> dict[str, Any]:
    return {
        "id": LIVE_ID, "stage": "talking", "dialled": "8585", "caller_masked": "139****5678",
        "started_at": (datetime.now(UTC) - timedelta(seconds=65)).isoformat(), "queue_id": None, "task_id": None,
        "agent_id": None, "ivr_path": ["welcome", "menu", "booking"], "talker": "agent", "hold": False,
        "third": None, "watch": None, "direction": "inbound", "supervisor_id": None, "contact_id": None,
    } | values  # fmt: skip


def test_a_supervisor_listens_whispers_and_hangs_up(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    ids = setup(server, admin_api)
    line = LiveLine(live_call(queue_id=ids["clinic"], agent_id=ids["agent"], task_id=999))
    waiting = live_call(id="ffeeddccbbaa9988", stage="queued", talker=None, queue_id=ids["insurance"],
                        caller_masked="anonymous", ivr_path=["welcome", "menu"])  # fmt: skip

    def handle(route: Route, request: Request) -> None:
        if request.method == "GET":
            route.fulfill(json=[c for c in (line.call, waiting) if c["stage"] != "ended"])
        else:
            line.handle(route, request)

    with logged_in(server, open_page, SUPERVISOR, SUPERVISOR_PASSWORD) as (page, _):
        page.route(re.compile(r"/api/voice/live(/.*)?$"), handle)
        page.goto("/voice/live")
        table = page.get_by_test_id("live-calls")
        expect(table.locator("tbody tr")).to_have_count(2)
        expect(page.get_by_test_id("line-off")).to_be_hidden()
        talking = table.locator(f'tr[data-call-id="{LIVE_ID}"]')
        expect(talking).to_contain_text("Talking")
        expect(talking).to_contain_text("139****5678")
        expect(talking).to_contain_text("门诊咨询 (vl e2e)")
        expect(talking).to_contain_text("Vl.Agent")
        expect(talking).to_contain_text("booking")
        expect(talking.locator("td.num")).to_have_text(re.compile(r"^01:0\d$"))  # time on the line, ticking
        queued = table.locator('tr[data-call-id="ffeeddccbbaa9988"]')
        expect(queued).to_contain_text("Waiting in a queue")
        expect(queued).to_contain_text("医保咨询 (vl e2e)")
        expect(queued.get_by_role("button")).to_have_count(0)  # controls only on connected calls
        expect(talking.get_by_role("button", name="Leave")).to_be_hidden()

        talking.get_by_role("button", name="Listen").click()
        expect(talking).to_contain_text("Supervisor listening")
        expect(talking.get_by_role("button", name="Listen")).to_have_attribute("aria-pressed", "true")
        talking.get_by_role("button", name="Whisper").click()
        expect(talking).to_contain_text("Supervisor whispering")
        expect(talking.get_by_role("button", name="Leave")).to_be_visible()

        unanswered = "Your phone did not answer; is it registered?"
        line.refuse["supervise"] = {"error_id": "phone_not_answered", "message": unanswered, "details": {}}
        talking.get_by_role("button", name="Barge in").click()
        expect(page.locator(".toast-error")).to_contain_text("Your phone did not answer")
        expect(talking).to_contain_text("Supervisor whispering")

        page.once("dialog", lambda dialog: dialog.dismiss())  # take over: not now
        talking.get_by_role("button", name="Take over").click()
        expect(talking).to_contain_text("Supervisor whispering")
        messages: list[str] = []
        page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
        talking.get_by_role("button", name="Hang up").click()
        expect(table.locator("tbody tr")).to_have_count(1)
        assert messages == ["Hang up the call with 139****5678? It ends for everyone on it."]
        assert [step for step, _ in line.posts] == ["supervise", "supervise", "supervise", "hangup"]
        assert [body for _, body in line.posts][:3] == [{"mode": "listen"}, {"mode": "whisper"}, {"mode": "barge"}]


def test_an_agent_holds_transfers_and_consults_from_the_bar(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    ids = setup(server, admin_api)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, http):
        for step in ("login", "ready"):
            assert http.post(f"/api/routing/me/{step}").status_code == 200
        task = admin_api.post("/api/routing/tasks", json={
            "queue_id": ids["clinic"], "channel": "voice", "caller": {"name": "王先生", "phone": "13912345678"},
            "subject": "电话咨询 (vl e2e)"})  # fmt: skip
        assert task.status_code == 201, task.text
        task_id = int(task.json()["id"])
        for _ in range(50):  # the router offers it to the one ready agent
            offer = http.get("/api/routing/me").json()["offer"]
            if offer and offer["task_id"] == task_id:
                break
            time.sleep(0.1)
        accepted = http.post(f"/api/routing/tasks/{task_id}/accept")
        assert accepted.status_code == 200, accepted.text

        # the real API: no phone line on this server, so no call controls
        asked: list[int] = []
        agent.on("response", lambda r: asked.append(r.status) if urlparse(r.url).path == "/api/voice/live" else None)
        agent.goto("/kb")
        bar = agent.locator(".agent-bar")
        row = bar.get_by_test_id("agent-task")
        expect(row).to_contain_text("电话咨询 (vl e2e)")
        agent.wait_for_timeout(2500)  # a poll's time: it is not asked again
        assert asked == [409]
        expect(row.get_by_test_id("call-controls")).to_have_count(0)

        line = LiveLine(live_call(queue_id=ids["clinic"], agent_id=ids["agent"], task_id=task_id))
        agent.route(re.compile(r"/api/voice/live(/.*)?$"), line.handle)
        targets = {
            "queues": [
                {"id": ids["clinic"], "name": "门诊咨询 (vl e2e)", "kind": "skill_group", "open": True},
                {"id": ids["insurance"], "name": "医保咨询 (vl e2e)", "kind": "skill_group", "open": True},
                {"id": 999001, "name": "神经外科 (vl e2e)", "kind": "department_seats", "open": False},
            ],
            "colleagues": [{"user_id": 999002, "username": "li.doctor", "name": "李医生", "status": "ready"}],
        }
        agent.route(re.compile(r"/api/voice/transfer-targets$"), lambda route, _: route.fulfill(json=targets))
        agent.reload()
        controls = row.get_by_test_id("call-controls")
        expect(controls).to_be_visible()
        agent.keyboard.press("Alt+h")
        expect(controls.locator(".pill")).to_have_text(["On hold"])
        expect(controls.get_by_role("button", name=re.compile("^Resume"))).to_be_visible()
        controls.get_by_role("button", name=re.compile("^Resume")).click()
        expect(controls.locator(".pill")).to_have_count(0)

        # a supervisor listening is not told; whispering and barging are
        line.call["watch"] = "listen"
        agent.wait_for_timeout(2500)
        expect(controls.locator(".pill")).to_have_count(0)
        line.call["watch"] = "whisper"
        expect(controls.locator(".pill")).to_have_text(["Supervisor whispering"])
        line.call["watch"] = None
        expect(controls.locator(".pill")).to_have_count(0)

        # consult a colleague who does not answer, then one who does; join all three
        line.refuse["consult"] = {"error_id": "not_answered", "message": "zhang did not answer.", "details": {}}
        controls.get_by_role("button", name=re.compile("^Consult")).click()
        target = controls.get_by_label("Colleague's user name or a phone number")
        expect(target).to_be_focused()
        expect(bar.locator("#rt-colleagues option")).to_have_count(1)  # colleagues offered as you type
        target.fill("zhang")
        target.press("Enter")
        expect(agent.locator(".toast-error")).to_contain_text("zhang did not answer.")
        controls.get_by_role("button", name=re.compile("^Consult")).click()
        controls.get_by_label("Colleague's user name or a phone number").fill("li.doctor")
        controls.get_by_role("button", name="Dial").click()
        expect(controls.locator(".pill")).to_have_text(["Consulting li.doctor"])
        expect(controls.get_by_role("button", name=re.compile("^Hold"))).to_be_hidden()
        expect(controls.get_by_role("button", name=re.compile("^Transfer"))).to_be_hidden()
        controls.get_by_role("button", name="Three-way").click()
        expect(controls.locator(".pill")).to_have_text(["Three-way"])
        expect(controls.get_by_role("button", name="Drop the colleague")).to_be_visible()
        controls.get_by_role("button", name="Drop the colleague").click()
        expect(controls.locator(".pill")).to_have_count(0)

        # transfer: the queues by kind (not the one the call is in), colleagues with their status, or a number
        controls.get_by_role("button", name=re.compile("^Transfer")).click()
        panel = controls.get_by_test_id("transfer-panel")
        where = panel.get_by_label("Transfer the caller to")
        expect(where.locator("optgroup")).to_have_count(3)
        assert where.locator("optgroup").evaluate_all("gs => gs.map(g => g.label)") == [
            "Queues", "Departments' seats", "Colleagues"]  # fmt: skip
        expect(where.locator("option")).to_have_text(
            ["— choose —", "医保咨询 (vl e2e)", "神经外科 (vl e2e) (closed now)", "李医生 · Ready"]
        )
        number = panel.get_by_label("or an outside number")
        number.fill("010 6709 8585")
        expect(where).to_be_disabled()
        number.fill("")
        expect(panel.get_by_role("button", name="Transfer the caller")).to_be_disabled()
        where.select_option(label="医保咨询 (vl e2e)")
        panel.get_by_role("button", name="Transfer the caller").click()
        expect(controls).to_have_count(0)
        assert line.posts == [
            ("hold", {"on": True}), ("hold", {"on": False}), ("consult", {"target": "zhang"}),
            ("consult", {"target": "li.doctor"}), ("consult/end", {"how": "conference"}),
            ("consult/end", {"how": "cancel"}), ("transfer", {"queue_id": ids["insurance"]}),
        ]  # fmt: skip

        # the stand-in transferred nothing: the task is still in hand
        done = http.post(f"/api/routing/tasks/{task_id}/complete", json={"wrap_up": False})
        assert done.status_code == 200, done.text
        expect(row).to_have_count(0)
        assert http.post("/api/routing/me/logout").status_code == 200


def test_an_agent_calls_out_from_the_bar(open_page: OpenPage, admin_api: httpx.Client, server: Server) -> None:
    ids = setup(server, admin_api)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, _):
        # the real API: no phone line on this server, so no calling out
        agent.goto("/kb")
        bar = agent.locator(".agent-bar")
        expect(bar.get_by_test_id("agent-status")).to_be_visible()
        agent.wait_for_timeout(500)
        expect(bar.get_by_role("button", name=re.compile("^Call out"))).to_be_hidden()

        line = LiveLine(live_call(direction="outbound", stage="ringing_agent", dialled="withheld",
                                  caller_masked="138****8000", agent_id=ids["agent"], talker=None))  # fmt: skip
        dialled: list[Any] = []

        def dial(route: Route, request: Request) -> None:
            dialled.append(request.post_data_json)
            route.fulfill(status=201, json=line.call)

        caller_ids = {"caller_ids": ["8585", "withheld"], "trunk": True}
        agent.route(re.compile(r"/api/voice/outbound/caller-ids$"), lambda route, _: route.fulfill(json=caller_ids))
        agent.route(re.compile(r"/api/voice/outbound$"), dial)
        agent.route(re.compile(r"/api/voice/live(/.*)?$"), line.handle)
        agent.reload()
        expect(bar.get_by_role("button", name=re.compile("^Call out"))).to_be_visible()
        agent.keyboard.press("Alt+o")
        panel = bar.get_by_test_id("dial-panel")
        expect(panel).to_be_visible()
        expect(panel.get_by_label("Number to call")).to_be_focused()
        expect(panel.get_by_role("button", name="Call", exact=True)).to_be_disabled()
        panel.get_by_label("Number to call").fill("138 0013 8000")
        panel.get_by_label("The patient sees").select_option(label="Number withheld")
        panel.get_by_role("button", name="Call", exact=True).click()
        expect(panel).to_be_hidden()
        assert dialled == [{"number": "138 0013 8000", "caller_id": "withheld"}]

        row = bar.get_by_test_id("outbound-call")
        expect(row).to_contain_text("138****8000")
        expect(row).to_contain_text("Your phone is ringing")
        line.call["stage"] = "dialling"
        expect(row).to_contain_text("Ringing 138****8000")
        expect(row.get_by_role("button", name="Cancel the call")).to_be_visible()

        line.call |= {"stage": "talking", "talker": "agent", "contact_id": 4242}
        controls = row.get_by_test_id("call-controls")
        expect(controls.get_by_role("button", name=re.compile("^Hold"))).to_be_visible()
        expect(controls.get_by_role("button", name=re.compile("^Transfer"))).to_be_hidden()  # no queue to go back to
        expect(row.get_by_role("link", name="Open the contact")).to_have_attribute("href", "/workbench/contacts/4242")
        agent.keyboard.press("Alt+h")
        expect(controls.locator(".pill")).to_have_text(["On hold"])
        controls.get_by_role("button", name="Hang up").click()
        expect(row).to_have_count(0)
        assert [step for step, _ in line.posts] == ["hold", "hangup"]


def test_the_wallboard_raises_the_line_alarm_when_the_self_test_failed(
    open_page: OpenPage, admin_api: httpx.Client, server: Server
) -> None:
    setup(server, admin_api)
    with logged_in(server, open_page, SUPERVISOR, SUPERVISOR_PASSWORD) as (page, _):
        page.goto("/routing/wallboard")  # the real API: no test call yet, no alarm
        expect(page.get_by_role("heading", name="Wallboard")).to_be_visible()
        page.wait_for_timeout(500)
        expect(page.get_by_test_id("line-alarm")).to_be_hidden()

        at = datetime.now(UTC).replace(second=0, microsecond=0)
        failed = {"id": 7, "started_at": at.isoformat(), "ok": False, "problem": "not_answered",
                  "problem_text": "the line did not answer", "number": "8585", "answer_ms": None,
                  "prompt_level": None, "outcome": "", "ivr_path": [], "alarm": "texted:12",
                  "alarm_text": "Texted to the on-call phone (message 12)"}  # fmt: skip
        page.route(re.compile(r"/api/voice/self-tests\?limit=1$"), lambda route, _: route.fulfill(json=[failed]))
        page.reload()
        alarm = page.get_by_test_id("line-alarm")
        local = at.astimezone().strftime("%H:%M")  # the browser runs in this machine's zone
        expect(alarm).to_contain_text(f"The phone line's self-test failed at {local}: the line did not answer.")
        expect(alarm.get_by_role("link", name="The line's tests")).to_have_attribute("href", "/voice/live")
