"""The web chat in a real browser:

- a patient asks a question in traditional characters and gets the published answer;
- emergency words get the instruction to call 120, and nothing else;
- the connection drops while the patient writes: the message waits, goes once when the connection is
  back, and a reload shows the whole chat with nothing lost or doubled;
- the patient asks for a person: the chat rings in the agent's bar, the agent accepts, lands in the
  chat desk with the transcript, and answers; the patient sees it;
- a supervisor watches a chat the assistant has and takes it over; the patient sees the supervisor."""

from __future__ import annotations

import re
import uuid

import httpx
from e2e_helpers import OpenPage, api_login, ensure_user
from playwright.sync_api import Page, expect
from test_routing_live_journey import Server, live, logged_in

AGENT, AGENT_PASSWORD = "chat.agent", "Answers-Chats-2026"
SUPERVISOR, SUPERVISOR_PASSWORD = "chat.super", "Watches-Chats-2026"


def setup(server: Server, admin_api: httpx.Client) -> None:
    """A published answer, the chat queue (GENERAL) with one agent, and a supervisor."""
    if server.state.get("chat"):
        return
    ensure_user(server, admin_api, AGENT, AGENT_PASSWORD)
    ensure_user(server, admin_api, SUPERVISOR, SUPERVISOR_PASSWORD, roles=("supervisor",))
    category = admin_api.post("/api/kb/categories", json={"code": "CHAT-E2E", "name": "交通停车"})
    assert category.status_code == 201, category.text
    item = admin_api.post("/api/kb/items", json={
        "category_id": category.json()["id"], "question": "医院停车场在哪里？",
        "answer_html": "<p>停车场在门诊楼地下一层，入口在东门。</p>",
    })  # fmt: skip
    assert item.status_code == 201, item.text
    row = item.json()
    for step in ("submit", "publish"):
        moved = admin_api.post(f"/api/kb/items/{row['id']}/transitions/{step}", json={"version": row["version"]})
        assert moved.status_code == 200, moved.text
        row = moved.json()
    queue = admin_api.post("/api/routing/queues", json={"code": "GENERAL", "name": "综合咨询 (chat e2e)"})
    assert queue.status_code == 201, queue.text
    agent_id = next(u["id"] for u in admin_api.get("/api/users", params={"q": AGENT}).json() if u["username"] == AGENT)
    members = admin_api.put(
        f"/api/routing/queues/{queue.json()['id']}/members", json=[{"user_id": agent_id, "tier": 1}]
    )
    assert members.status_code == 200, members.text
    server.state["chat"] = True


def patient(open_page: OpenPage, label: str = "patient") -> Page:
    page = open_page(label)
    page.set_viewport_size({"width": 390, "height": 780})  # a phone
    page.goto("/chat?lang=en")
    expect(page.locator(".pc-bot").first).to_contain_text("Hello")
    return page


def say(page: Page, text: str) -> None:
    page.get_by_test_id("chat-input").fill(text)
    page.get_by_test_id("chat-input").press("Enter")


def test_a_question_in_traditional_characters_is_answered(open_page: OpenPage, admin_api: httpx.Client,
                                                          server: Server) -> None:  # fmt: skip
    setup(server, admin_api)
    page = patient(open_page)
    say(page, "醫院停車場在哪裡？")
    answer = page.locator(".pc-kind-answer")
    expect(answer).to_contain_text("门诊楼地下一层")
    expect(answer.get_by_role("link", name="Read more")).to_have_attribute("href", re.compile(r"^/faq/items/\d+"))
    expect(page.locator(".pc-patient")).to_have_count(1)


def test_emergency_words_get_the_instruction_at_once(open_page: OpenPage, admin_api: httpx.Client,
                                                     server: Server) -> None:  # fmt: skip
    setup(server, admin_api)
    page = patient(open_page)
    say(page, "My father has sudden crushing chest pain and is sweating")
    expect(page.locator(".pc-kind-emergency")).to_contain_text("120")
    expect(page.locator(".pc-kind-answer")).to_have_count(0)


def test_a_dropped_connection_loses_nothing_and_doubles_nothing(open_page: OpenPage, admin_api: httpx.Client,
                                                                server: Server) -> None:  # fmt: skip
    setup(server, admin_api)
    page = patient(open_page)
    expect(page.locator("[data-status]")).to_have_text("Connected")
    page.context.set_offline(True)
    say(page, "停车场在哪里")
    expect(page.locator(".pc-pending")).to_contain_text("Not sent yet")
    page.context.set_offline(False)
    expect(page.locator(".pc-kind-answer")).to_have_count(1, timeout=15_000)
    expect(page.locator(".pc-pending")).to_have_count(0)
    page.reload()
    expect(page.locator(".pc-kind-answer")).to_have_count(1)
    expect(page.locator(".pc-patient")).to_have_count(1)
    seqs = page.locator("[data-log] [data-seq]").evaluate_all("nodes => nodes.map(n => Number(n.dataset.seq))")
    assert seqs == sorted(set(seqs)) and seqs[0] == 1 and seqs == list(range(1, len(seqs) + 1))


def test_an_agent_takes_the_chat_from_the_bar_and_answers(open_page: OpenPage, admin_api: httpx.Client,
                                                          server: Server) -> None:  # fmt: skip
    setup(server, admin_api)
    with logged_in(server, open_page, AGENT, AGENT_PASSWORD) as (agent, http):
        agent.goto("/chat/desk")
        live(agent)
        expect(agent.get_by_test_id("chat-mine")).to_contain_text("No chats")
        assert http.post("/api/routing/me/login").status_code == 200
        assert http.post("/api/routing/me/ready").status_code == 200
        page = patient(open_page)
        say(page, "我想问一下住院押金，转人工")
        expect(page.locator(".pc-kind-queued")).to_be_visible()
        offer = agent.get_by_test_id("agent-offer")
        expect(offer).to_contain_text("我想问一下住院押金")
        agent.keyboard.press("Alt+a")
        expect(agent).to_have_url(re.compile(r"/chat/desk\?chat=[0-9a-f]{32}$"))
        log = agent.get_by_test_id("desk-log")
        expect(log).to_contain_text("我想问一下住院押金，转人工")
        expect(page.locator(".pc-kind-joined")).to_be_visible()
        agent.get_by_test_id("desk-input").fill("您好，住院押金可以在住院处或自助机缴纳。")
        agent.get_by_test_id("desk-send").click()
        expect(page.locator(".pc-agent")).to_contain_text("住院处或自助机")
        expect(page.locator(".pc-patient .pc-read")).to_have_text("Read")
        agent.get_by_role("button", name="End chat").click()
        expect(page.get_by_role("heading", name="How was this chat?")).to_be_visible()
        page.locator("input[name=rating][value='5']").check()
        page.get_by_role("button", name="Send rating").click()
        expect(page.locator(".pc-notice")).to_have_text("Thank you for your rating.")
        assert http.post("/api/routing/me/logout").status_code == 200


def test_a_supervisor_takes_over_a_chat_with_the_assistant(open_page: OpenPage, admin_api: httpx.Client,
                                                           server: Server) -> None:  # fmt: skip
    setup(server, admin_api)
    page = patient(open_page)
    marker = uuid.uuid4().hex[:6]
    say(page, f"食堂几点开门 {marker}")
    expect(page.locator(".pc-kind-choices")).to_be_visible()
    with api_login(server, SUPERVISOR, SUPERVISOR_PASSWORD) as http:
        chats = http.get("/api/chat-desk").json()["live"]
    chat_id = chats[0]["conversation"]
    with logged_in(server, open_page, SUPERVISOR, SUPERVISOR_PASSWORD) as (supervisor, _):
        supervisor.goto("/chat/desk")
        live(supervisor)
        supervisor.locator(f"[data-chat='{chat_id}']").first.click()
        expect(supervisor.get_by_test_id("desk-log")).to_contain_text(marker)
        supervisor.get_by_test_id("take-over").click()
        supervisor.get_by_test_id("desk-input").fill("您好，我是值班班长，食堂早上 6:30 开门。")
        supervisor.get_by_test_id("desk-send").click()
        expect(page.locator(".pc-agent")).to_contain_text("值班班长")
        expect(page.locator(".pc-kind-joined")).to_be_visible()


def test_the_widget_opens_the_chat_on_a_hospital_page(open_page: OpenPage, admin_api: httpx.Client,
                                                      server: Server) -> None:  # fmt: skip
    setup(server, admin_api)
    page = open_page("site")
    page.goto("/chat/demo-site")
    button = page.locator("#pl-chat-widget")
    expect(button).to_have_text("在线咨询")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(button).to_have_text("关闭")
    frame = page.frame_locator("iframe[title='在线咨询']")
    expect(frame.locator(".pc-bot").first).to_contain_text("您好")
    frame.get_by_test_id("chat-input").fill("醫院停車場在哪裡？")
    frame.get_by_test_id("chat-input").press("Enter")
    expect(frame.locator(".pc-kind-answer")).to_contain_text("门诊楼地下一层")
