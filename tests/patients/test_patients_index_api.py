"""The patient index through /api/patients: a family sharing one mobile, verification, reveal with a
reason, registration with checked identifiers, corrections, flags, VIP, merge and the export — and that
every read and reveal leaves an audit row while nothing leaks in URLs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from stdnum.cn import ric

from helpers import Client, assert_error

FAMILY_PHONE = "139 0000 1111"


def id_card(first17: str) -> str:
    return first17 + ric.calc_check_digit(first17 + "0")  # the function skips the last character


FATHER_ID = id_card("11010519800101123")  # born 1980-01-01, male
CHILD_ID = id_card("11010520150601004")  # born 2015-06-01, female


async def register(client: Client, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/patients", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def family(agent: Client) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    father = await register(agent, name="王建国", phones=[FAMILY_PHONE], identifiers={"id_card": FATHER_ID})
    mother = await register(agent, name="李秀英", sex="female", birth_date="1982-03-04", phones=[FAMILY_PHONE])
    child = await register(agent, name="王小雨", phones=[FAMILY_PHONE, "13800138000"],
                           identifiers={"id_card": CHILD_ID, "mrn": "m-0042"})  # fmt: skip
    return father, mother, child


@asynccontextmanager
async def agent_and_supervisor(as_user: Any) -> AsyncIterator[tuple[Client, Client]]:
    async with as_user("agent01", ["agent"]) as agent, as_user("super1", ["supervisor"]) as supervisor:
        yield agent, supervisor


async def audit_rows(admin: Client, action: str) -> list[dict[str, Any]]:
    response = await admin.get("/api/audit", params={"limit": 500, "action": action})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


async def test_a_family_sharing_one_mobile_is_found_and_the_caller_verified(as_user: Any, admin: Client) -> None:
    async with agent_and_supervisor(as_user) as (agent, _):
        father, mother, child = await family(agent)
        assert father["birth_date"] == "1980-01-01" and father["sex"] == "male"  # read from the ID card number
        masked = {i["kind"]: i["masked"] for i in child["identifiers"]}
        assert masked == {"id_card": f"110105********{CHILD_ID[-4:]}", "mrn": "**0042"}

        found = (await agent.post("/api/patients/search", json={"query": "13900001111"})).json()
        assert found["by"] == "phone"
        assert [c["id"] for c in found["candidates"]] == [father["id"], mother["id"], child["id"]]  # oldest first
        first = found["candidates"][0]
        assert first["name_masked"] == "王*国" and first["phones_masked"] == ["139****1111"]
        assert "birth_date" not in first  # the verifying question's answer is not on the list

        wrong = await agent.post(f"/api/patients/{child['id']}/verify", json={"birth_date": "2015-06-02"})
        assert_error(wrong, 422, "verification_failed")
        right = await agent.post(f"/api/patients/{child['id']}/verify", json={"id_digits": CHILD_ID[-4:]})
        assert right.json() == {"verified": True, "method": "id_digits", "patient_id": child["id"]}

    failed = await audit_rows(admin, "patients.verify_failed")
    assert [r["target_id"] for r in failed] == [str(child["id"])]  # the failed try survived its error
    searches = await audit_rows(admin, "patients.searched")
    assert searches and "13900001111" not in str(searches)  # what was typed is not in the log


async def test_search_by_id_card_record_number_name_and_pinyin(as_user: Any) -> None:
    async with agent_and_supervisor(as_user) as (agent, _):
        father, _, child = await family(agent)
        for query, by, expected in [
            (FATHER_ID[:6] + " " + FATHER_ID[6:], "id_card", [father["id"]]),
            ("M-0042", "identifier", [child["id"]]),
            ("王", "name", [father["id"], child["id"]]),
            ("wangxiaoyu", "name", [child["id"]]),
            ("wxy", "name", [child["id"]]),
            ("13800138000", "phone", [child["id"]]),
        ]:
            found = (await agent.post("/api/patients/search", json={"query": query})).json()
            assert (found["by"], sorted(c["id"] for c in found["candidates"])) == (by, sorted(expected)), query
        nobody = (await agent.post("/api/patients/search", json={"query": "13912345678"})).json()
        assert nobody["candidates"] == []
        assert_error(await agent.post("/api/patients/search", json={"query": " "}), 422)
        bad_card = FATHER_ID[:-1] + ("1" if FATHER_ID[-1] != "1" else "2")
        assert_error(await agent.post("/api/patients/search", json={"query": bad_card}), 422, "invalid_input")


async def test_reveal_needs_a_reason_and_the_audit_shows_it(as_user: Any, admin: Client) -> None:
    async with agent_and_supervisor(as_user) as (agent, supervisor):
        father, _, _ = await family(agent)
        card = (await agent.get(f"/api/patients/{father['id']}", params={"purpose": "contact:7"})).json()
        phone_id = card["phones"][0]["id"]
        assert card["phones"][0]["masked"] == "139****1111"

        no_reason = await agent.post(f"/api/patients/{father['id']}/reveal",
                                     json={"what": "phone", "item_id": phone_id, "reason": ""})  # fmt: skip
        assert_error(no_reason, 422)
        reveal = {"what": "phone", "item_id": phone_id, "reason": "call back about the bill"}
        shown = await agent.post(f"/api/patients/{father['id']}/reveal", json=reveal)
        assert shown.json()["value"] == "+8613900001111"
        other = await agent.post(f"/api/patients/{father['id']}/reveal",
                                 json={"what": "identifier", "item_id": 999999, "reason": "check"})  # fmt: skip
        assert_error(other, 404)

        log = (await supervisor.get(f"/api/patients/{father['id']}/access-log")).json()
        assert {"action": "patients.revealed", "reason": "call back about the bill", "actor": "agent01"}.items() <= {
            k: v for k, v in log[0].items() if k in ("action", "reason", "actor")
        }.items()
        assert any(e["action"] == "patients.read" and e["reason"] == "contact:7" for e in log)
        assert_error(await agent.get(f"/api/patients/{father['id']}/access-log"), 403)

    reveals = await audit_rows(admin, "patients.revealed")
    assert "+8613900001111" not in str(reveals) and "13900001111" not in str(reveals)


async def test_registration_refuses_bad_identifiers_and_loses_nothing(as_user: Any) -> None:
    async with agent_and_supervisor(as_user) as (agent, _):
        await register(agent, name="王建国", identifiers={"id_card": FATHER_ID})
        bad_checksum = FATHER_ID[:-1] + ("1" if FATHER_ID[-1] != "1" else "2")
        cases = [
            ({"name": "甲", "identifiers": {"id_card": bad_checksum}}, 422),
            ({"name": "甲", "identifiers": {"id_card": "110105203001011234"}}, 422),  # born in 2030
            ({"name": "甲", "identifiers": {"passport": "E123"}}, 422),
            ({"name": "甲", "birth_date": "2999-01-01"}, 422),
            ({"name": "甲", "birth_date": "1899-12-31"}, 422),
            ({"name": "甲", "phones": ["12345"]}, 422),
            ({"name": "甲", "identifiers": {"id_card": FATHER_ID}, "birth_date": "1981-01-01"}, 422),
            ({"name": "甲", "identifiers": {"id_card": FATHER_ID}, "sex": "female"}, 422),
            ({"name": "甲", "identifiers": {"mrn": "bad value!"}}, 422),
            ({"name": "", "phones": []}, 422),
            ({"name": "甲", "quiet_hours": "25:00-08:00"}, 422),
        ]
        for body, status in cases:
            assert_error(await agent.post("/api/patients", json=body), status)
        taken = await agent.post("/api/patients", json={"name": "冒名", "identifiers": {"id_card": FATHER_ID}})
        body = assert_error(taken, 409, "identifier_taken")
        assert body["details"]["field"] == "identifiers.id_card"
        found = (await agent.post("/api/patients/search", json={"query": "甲"})).json()
        assert found["candidates"] == []  # none of the refused registrations left a row


async def test_corrections_are_versioned_and_checked(as_user: Any) -> None:
    async with agent_and_supervisor(as_user) as (agent, _):
        mother = await register(agent, name="李秀英", sex="female", birth_date="1982-03-04")
        changed = await agent.patch(f"/api/patients/{mother['id']}", json={
            "version": mother["version"], "name": "李秀瑛", "sms_opt_in": False, "quiet_hours": "21:00-08:00",
            "phones": ["13900001111"], "identifiers": {"insurance": "ybk-001"},
        })  # fmt: skip
        assert changed.status_code == 200, changed.text
        card = changed.json()
        assert (card["name"], card["sms_opt_in"], card["quiet_hours"]) == ("李秀瑛", False, "21:00-08:00")
        assert card["identifiers"][0]["kind"] == "insurance" and card["version"] == mother["version"] + 1
        stale = await agent.patch(f"/api/patients/{mother['id']}", json={"version": mother["version"], "name": "X"})
        assert_error(stale, 409, "stale_version")
        contradiction = await agent.patch(f"/api/patients/{mother['id']}", json={
            "version": card["version"], "identifiers": {"id_card": FATHER_ID},
        })  # fmt: skip
        assert_error(contradiction, 422)  # a man's ID card on a woman born in 1982
        again = (await agent.get(f"/api/patients/{mother['id']}")).json()
        assert again["version"] == card["version"] and again["identifiers"][0]["kind"] == "insurance"
        blanks = {"version": card["version"], "sms_opt_in": None, "birth_date": None}
        nulls = await agent.patch(f"/api/patients/{mother['id']}", json=blanks)
        assert nulls.status_code == 200, nulls.text
        assert (nulls.json()["sms_opt_in"], nulls.json()["birth_date"]) == (False, None)  # null clears a date only
        assert (await agent.post("/api/patients/search", json={"query": "lixiuying"})).json()["candidates"]


async def test_flags_vip_and_who_may_do_what(as_user: Any, make_user: Any) -> None:
    async with agent_and_supervisor(as_user) as (agent, supervisor), as_user("h1", ["handler"]) as handler:
        patient = await register(agent, name="赵某", phones=["13912345678"])
        threat = {"kind": "abusive", "note": "shouted threats at the agent on 11-20"}
        flagged = await agent.post(f"/api/patients/{patient['id']}/flags", json=threat)
        assert flagged.status_code == 201
        flag = flagged.json()["flags"][0]
        found = (await agent.post("/api/patients/search", json={"query": "13912345678"})).json()
        assert found["candidates"][0]["flags"] == ["abusive"]
        assert_error(await agent.post(f"/api/patients/{patient['id']}/flags/{flag['id']}/clear",
                                      json={"note": "resolved"}), 403)  # fmt: skip
        cleared = await supervisor.post(f"/api/patients/{patient['id']}/flags/{flag['id']}/clear",
                                        json={"note": "apologised; talked to the family"})  # fmt: skip
        assert cleared.json()["flags"] == []
        assert_error(await supervisor.post(f"/api/patients/{patient['id']}/flags/{flag['id']}/clear",
                                           json={"note": "again"}), 409)  # fmt: skip

        version = cleared.json()["version"]
        assert_error(await agent.put(f"/api/patients/{patient['id']}/vip", json={"version": version, "level": 2}), 403)
        vip = await supervisor.put(f"/api/patients/{patient['id']}/vip",
                                   json={"version": version, "level": 2, "note": "board member"})  # fmt: skip
        assert vip.json()["vip_level"] == 2
        assert_error(await supervisor.put(f"/api/patients/{patient['id']}/vip",
                                          json={"version": vip.json()["version"], "level": 1, "expert_id": 999999}),
                     422)  # fmt: skip

        assert_error(await handler.post("/api/patients/search", json={"query": "赵"}), 403)
        assert_error(await handler.get(f"/api/patients/{patient['id']}"), 403)
        assert_error(await agent.get("/api/patients/999999"), 404)


async def test_merge_keeps_every_identifier_findable_and_is_idempotent(as_user: Any, admin: Client) -> None:
    async with agent_and_supervisor(as_user) as (agent, supervisor):
        survivor = await register(agent, name="王小雨", phones=["13900001111"], identifiers={"id_card": CHILD_ID})
        duplicate = await register(agent, name="王小雨", phones=["13800138000"],
                                   identifiers={"mrn": "M-0042", "visit_card": "VC-9"})  # fmt: skip
        await agent.post(f"/api/patients/{duplicate['id']}/flags", json={"kind": "safety", "note": "hard of hearing"})
        assert_error(await agent.post(f"/api/patients/{survivor['id']}/merge",
                                      json={"duplicate_id": duplicate["id"], "reason": "same child"}), 403)  # fmt: skip
        merged = await supervisor.post(f"/api/patients/{survivor['id']}/merge",
                                       json={"duplicate_id": duplicate["id"], "reason": "same child"})  # fmt: skip
        assert merged.status_code == 200, merged.text
        card = merged.json()
        assert {i["kind"] for i in card["identifiers"]} == {"id_card", "mrn", "visit_card"}
        assert {p["masked"] for p in card["phones"]} == {"139****1111", "138****8000"}
        assert [f["kind"] for f in card["flags"]] == ["safety"]
        for query in ("M-0042", "13800138000", "VC-9"):
            found = (await agent.post("/api/patients/search", json={"query": query})).json()
            assert [c["id"] for c in found["candidates"]] == [survivor["id"]], query
        assert (await agent.get(f"/api/patients/{duplicate['id']}")).json()["id"] == survivor["id"]
        again = await supervisor.post(f"/api/patients/{survivor['id']}/merge",
                                      json={"duplicate_id": duplicate["id"], "reason": "same child"})  # fmt: skip
        assert again.status_code == 200
        itself = await supervisor.post(f"/api/patients/{survivor['id']}/merge",
                                       json={"duplicate_id": survivor["id"], "reason": "oops"})  # fmt: skip
        assert_error(itself, 422)

        exported = await supervisor.post(f"/api/patients/{survivor['id']}/export", json={"reason": "patient asked"})
        document = exported.json()
        assert "attachment" in exported.headers["content-disposition"]
        assert {i["value"] for i in document["identifiers"]} == {CHILD_ID, "M-0042", "VC-9"}
        assert document["merged_records"][0]["merged_id"] == duplicate["id"]
        assert_error(await agent.post(f"/api/patients/{survivor['id']}/export", json={"reason": "x y"}), 403)

    assert len(await audit_rows(admin, "patients.merged")) == 1
    assert len(await audit_rows(admin, "patients.exported")) == 1
