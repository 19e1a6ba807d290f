"""`POST /api/assistant/triage`: the hospital's own departments behind each standard one, the emergency
guard's finding, and refusals."""

from __future__ import annotations

from typing import Any

from helpers import Client, assert_error


async def create(admin: Client, path: str, **body: Any) -> dict[str, Any]:
    response = await admin.post(f"/api/directory/{path}", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_suggestions_name_the_departments_that_answer_for_them(admin: Client, as_user: Any) -> None:
    site = await create(admin, "sites", code="MAIN", name="本院")
    gut = await create(admin, "departments", code="GI", name="消化内科", site_id=site["id"])
    stomach = await create(
        admin, "departments", code="WCB", name="胃肠病中心", site_id=site["id"], triage_department="消化内科"
    )
    await create(admin, "departments", code="OLD", name="消化内科", site_id=site["id"], is_active=False)
    async with as_user("agent01", ["agent"]) as agent:
        response = await agent.post("/api/assistant/triage", json={"text": "胃疼反酸好长时间了，吃完饭更难受"})
        assert response.status_code == 200, response.text
        body = response.json()
    assert body["emergency"] is None
    first = body["suggestions"][0]
    assert first["department"] == "消化内科" and first["terms"] and "提到" in first["reason"]
    assert sorted(clinic["id"] for clinic in first["clinics"]) == sorted([gut["id"], stomach["id"]])
    assert len(body["suggestions"]) == 3


async def test_an_emergency_comes_with_the_instruction(as_user: Any) -> None:
    async with as_user("agent01", ["agent"]) as agent:
        body = (
            await agent.post("/api/assistant/triage", json={"text": "我爸突然胸口剧痛，一直冒冷汗", "age": 67})
        ).json()
    assert body["emergency"]["category"] == "chest_pain" and "120" in body["emergency"]["instruction"]
    assert body["suggestions"][0]["department"] == "急诊科"


async def test_bad_input_and_missing_rights_are_refused(as_user: Any, anon: Client) -> None:
    assert_error(await anon.post("/api/assistant/triage", json={"text": "头疼"}), 401)
    async with as_user("handler1", ["handler"]) as handler:
        assert_error(await handler.post("/api/assistant/triage", json={"text": "头疼"}), 403)
    async with as_user("agent01", ["agent"]) as agent:
        for body in ({"text": "  "}, {"text": "头" * 501}, {"text": "头疼", "age": 200}, {"text": "头疼", "sex": "M"}):
            assert_error(await agent.post("/api/assistant/triage", json=body), 422)
        lone_surrogate = b'{"text": "\\ud800"}'  # valid JSON, not valid text
        headers = {"content-type": "application/json"}
        assert_error(await agent.post("/api/assistant/triage", content=lone_surrogate, headers=headers), 422)
        nothing = await agent.post("/api/assistant/triage", json={"text": "？？？"})
        assert nothing.status_code == 200 and nothing.json() == {"emergency": None, "suggestions": []}


async def test_a_department_names_only_a_known_triage_department(admin: Client) -> None:
    site = await create(admin, "sites", code="MAIN", name="本院")
    refused = await admin.post(
        "/api/directory/departments",
        json={"code": "X", "name": "X", "site_id": site["id"], "triage_department": "牙科"},
    )
    assert "triage_department" in str(assert_error(refused, 422)["details"])
    department = await create(admin, "departments", code="KQ", name="口腔中心", site_id=site["id"])
    assert department["triage_department"] is None
    changed = await admin.patch(
        f"/api/directory/departments/{department['id']}",
        json={"version": department["version"], "triage_department": "口腔科"},
    )
    assert changed.status_code == 200 and changed.json()["triage_department"] == "口腔科"
