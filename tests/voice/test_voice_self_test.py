"""The line's self-test (CH6) on the real line: a media worker calls 8585 like a patient, hears the
greeting, keys 0 and reaches the general queue, without leaving a call record or a routing task behind.
When the menu leads to a queue that is switched off, the test fails, the wallboard's API shows it, and
the on-call phone is texted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from phone_line import Line
from sip import tools_missing

pytestmark = pytest.mark.skipif(bool(tools_missing()), reason=f"missing {tools_missing()}")
QUEUE_FIELDS = ("code", "name", "kind", "team_id", "site_id", "skill", "hours", "working_days_only", "priority",
                "wrap_up", "wrap_up_s", "max_wait_s", "widen_after_s", "sl_target_pct", "sl_threshold_s",
                "alert_waiting", "is_active")  # fmt: skip


def switch(http: httpx.Client, queue: dict[str, Any], *, on: bool) -> None:
    body = {k: queue[k] for k in QUEUE_FIELDS if k in queue} | {"is_active": on}
    fresh = http.get(f"/api/routing/queues/{queue['id']}").json()
    answer = http.put(f"/api/routing/queues/{queue['id']}", json=body | {"version": fresh["version"]})
    assert answer.status_code == 200, answer.text


def test_the_line_tests_itself_and_raises_the_alarm_when_the_menu_leads_nowhere(
    line: Line, supervisor: httpx.Client, agents: tuple[httpx.Client, httpx.Client]
) -> None:
    agent_http, _ = agents
    assert agent_http.post("/api/voice/self-tests").status_code == 403
    assert supervisor.get("/api/voice/self-tests", params={"limit": 0}).status_code == 422
    before = line.last_id(supervisor)

    passed = supervisor.post("/api/voice/self-tests")
    assert passed.status_code == 201, passed.text
    result = passed.json()
    assert (result["ok"], result["problem"], result["outcome"], result["number"]) == (True, "", "queue", "8585")
    assert 0 < result["answer_ms"] < 3000 and result["prompt_level"] > 200
    assert result["ivr_path"][-1] == "general" and result["alarm"] == ""
    assert line.last_id(supervisor) == before  # no call record
    general = next(q for q in supervisor.get("/api/routing/queues").json() if q["code"] == "GENERAL")
    live = supervisor.get("/api/routing/live").json()
    assert next(q for q in live["queues"] if q["id"] == general["id"])["waiting"] == 0  # nothing left in the router

    with line.client("admin") as admin:
        switch(admin, general, on=False)
        try:
            failed = supervisor.post("/api/voice/self-tests").json()
        finally:
            switch(admin, general, on=True)
    assert (failed["ok"], failed["problem"]) == (False, "queue_closed"), failed
    # the texts are in the supervisor's language (the demo's supervisors read Chinese)
    assert failed["problem_text"] in ("the menu led to a closed queue", "菜单进入了已关闭的队列")
    assert failed["alarm"].startswith("texted:") and failed["alarm"][7:] in failed["alarm_text"]
    latest = supervisor.get("/api/voice/self-tests", params={"limit": 2}).json()
    assert [t["id"] for t in latest] == [failed["id"], result["id"]]
    page = supervisor.get("/voice/live")
    assert page.status_code == 200 and 'data-testid="self-tests"' in page.text
    assert failed["problem_text"] in page.text and failed["alarm_text"] in page.text
