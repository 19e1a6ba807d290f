"""Doctors and clinic timetables through /api/kb: doctors, weekly sessions, stops and substitutions,
who is in when, the week's grid, finding doctors by pinyin, and who may change what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from helpers import Client, assert_error
from patientline.core import clock
from patientline.core.events import replay
from patientline.knowledge.timetable_demo import load_demo_timetables

# Monday 23 November 2026, 09:00 in Beijing
NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
TUESDAY = "2026-11-24"
NEXT_TUESDAY = "2026-12-01"


@pytest.fixture(autouse=True)
def frozen_clock() -> Iterator[None]:
    clock.set_now(NOW)  # before the fixtures log in, so sessions do not time out when the clock moves
    yield


async def post(client: Client, url: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = await client.post(url, json=body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def put_sessions(client: Client, doctor: dict[str, Any], sessions: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.put(
        f"/api/kb/doctors/{doctor['id']}/sessions", json={"version": doctor["version"], "sessions": sessions}
    )
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


@pytest.fixture
async def hospital(admin: Client) -> dict[str, Any]:
    """院本部 with 消化内科 and 骨科, 东院区 with its own 消化内科; 张伟 and 李娜 in 消化内科, 王强 in 骨科.
    张伟 holds an expert clinic on Tuesday afternoons and Friday mornings."""
    main = await post(admin, "/api/directory/sites", {"code": "MAIN", "name": "院本部"})
    east = await post(admin, "/api/directory/sites", {"code": "EAST", "name": "东院区"})
    xhnk = await post(admin, "/api/directory/departments", {"code": "XHNK", "name": "消化内科", "site_id": main["id"]})
    gk = await post(admin, "/api/directory/departments", {"code": "GK", "name": "骨科", "site_id": main["id"]})
    xhnk_e = await post(
        admin, "/api/directory/departments", {"code": "XHNK-E", "name": "消化内科", "site_id": east["id"]}
    )
    zhang = await post(
        admin,
        "/api/kb/doctors",
        {
            "code": "D001",
            "name": "张伟",
            "title": "主任医师",
            "site_id": main["id"],
            "department_id": xhnk["id"],
            "speciality": "胃肠镜诊疗，幽门螺杆菌感染",
            "introduction": "从事消化内科临床工作 25 年。",
        },
    )
    li = await post(
        admin,
        "/api/kb/doctors",
        {"code": "D002", "name": "李娜", "title": "副主任医师", "site_id": main["id"], "department_id": xhnk["id"]},
    )
    wang = await post(
        admin,
        "/api/kb/doctors",
        {"code": "D003", "name": "王强", "title": "主治医师", "site_id": main["id"], "department_id": gk["id"]},
    )
    zhang = await put_sessions(
        admin,
        zhang,
        [
            {"weekday": 2, "half_day": "pm", "kind": "专家门诊", "room": "门诊楼 3 层 C 区 12 诊室"},
            {"weekday": 5, "half_day": "am", "kind": "专家门诊", "room": "门诊楼 3 层 C 区 12 诊室"},
        ],
    )
    li = await put_sessions(admin, li, [{"weekday": 2, "half_day": "pm", "room": "门诊楼 3 层 C 区 8 诊室"}])
    wang = await put_sessions(admin, wang, [{"weekday": 1, "half_day": "am", "room": "门诊楼 2 层 B 区"}])
    return {
        "main": main,
        "east": east,
        "xhnk": xhnk,
        "gk": gk,
        "xhnk_e": xhnk_e,
        "zhang": zhang,
        "li": li,
        "wang": wang,
    }


async def availability(client: Client, doctor_id: int, day: str, half_day: str | None = None) -> dict[str, Any]:
    params = {"day": day} | ({"half_day": half_day} if half_day else {})
    response = await client.get(f"/api/kb/doctors/{doctor_id}/availability", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# ---- doctors -----------------------------------------------------------------------------------


async def test_a_doctor_is_created_read_changed_and_audited(admin: Client, hospital: dict[str, Any], db: Any) -> None:
    zhang = hospital["zhang"]
    assert zhang["title"] == "主任医师" and zhang["is_active"] is True
    assert zhang["version"] == 2  # created, then its sessions set
    assert [(s["weekday"], s["half_day"], s["kind"]) for s in zhang["sessions"]] == [
        (2, "pm", "专家门诊"),
        (5, "am", "专家门诊"),
    ]
    assert zhang["changes"] == []

    read = (await admin.get(f"/api/kb/doctors/{zhang['id']}")).json()
    assert read == zhang
    listed = (await admin.get("/api/kb/doctors", params={"department_id": hospital["xhnk"]["id"]})).json()
    assert {d["name"] for d in listed} == {"张伟", "李娜"}

    changed = await admin.patch(
        f"/api/kb/doctors/{zhang['id']}", json={"version": zhang["version"], "title": "主任医师、教授"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "主任医师、教授" and changed.json()["version"] == zhang["version"] + 1

    audit = (await admin.get("/api/audit", params={"target_type": "doctor", "target_id": str(zhang["id"])})).json()
    assert [a["action"] for a in audit] == ["kb.doctor.update", "kb.doctor.sessions", "kb.doctor.create"]
    assert audit[0]["before"]["title"] == "主任医师" and audit[0]["after"]["title"] == "主任医师、教授"
    async with db.sessions() as session:
        published = [e.payload for e in await replay(session, after_id=0) if e.type == "timetable.changed"]
    assert {"doctor_id": zhang["id"], "department_id": hospital["xhnk"]["id"], "name": "张伟", "change": "updated"} in [
        {k: p[k] for k in ("doctor_id", "department_id", "name", "change")} for p in published
    ]


async def test_saving_unchanged_writes_nothing(admin: Client, hospital: dict[str, Any]) -> None:
    zhang = hospital["zhang"]
    same = await admin.patch(f"/api/kb/doctors/{zhang['id']}", json={"version": zhang["version"], "name": "张伟"})
    assert same.status_code == 200 and same.json()["version"] == zhang["version"]
    again = await put_sessions(
        admin, zhang, [{k: s[k] for k in ("weekday", "half_day", "kind", "room", "note")} for s in zhang["sessions"]]
    )
    assert again["version"] == zhang["version"]


async def test_invalid_doctors_are_422_with_the_error_shape(admin: Client, hospital: dict[str, Any]) -> None:
    main, east, xhnk = hospital["main"]["id"], hospital["east"]["id"], hospital["xhnk"]["id"]
    missing = assert_error(await admin.post("/api/kb/doctors", json={"code": "D9"}), 422, "invalid_input")
    assert {d["field"] for d in missing["details"]} >= {"name", "site_id", "department_id"}
    bad_code = {"code": "有 空格", "name": "赵六", "site_id": main, "department_id": xhnk}
    assert_error(await admin.post("/api/kb/doctors", json=bad_code), 422, "invalid_input")
    unknown = {"code": "D9", "name": "赵六", "site_id": main, "department_id": 999}
    body = assert_error(await admin.post("/api/kb/doctors", json=unknown), 422, "unknown_reference")
    assert body["details"] == {"missing": {"department_id": 999}}
    elsewhere = {"code": "D9", "name": "赵六", "site_id": east, "department_id": xhnk}
    assert_error(await admin.post("/api/kb/doctors", json=elsewhere), 422, "department_not_at_site")
    taken = {"code": "d001", "name": "赵六", "site_id": main, "department_id": xhnk}
    assert_error(await admin.post("/api/kb/doctors", json=taken), 409, "duplicate_code")
    extra = {"code": "D9", "name": "赵六", "site_id": main, "department_id": xhnk, "salary": 1}
    assert_error(await admin.post("/api/kb/doctors", json=extra), 422, "invalid_input")
    zhang = hospital["zhang"]
    empty = await admin.patch(f"/api/kb/doctors/{zhang['id']}", json={"version": zhang["version"], "name": None})
    assert_error(empty, 422, "invalid_input")
    assert_error(await admin.get("/api/kb/doctors/999"), 404, "not_found")


async def test_invalid_sessions_are_422(admin: Client, hospital: dict[str, Any]) -> None:
    zhang = hospital["zhang"]
    url = f"/api/kb/doctors/{zhang['id']}/sessions"

    async def refused(sessions: list[dict[str, Any]], error_id: str) -> list[dict[str, Any]]:
        response = await admin.put(url, json={"version": zhang["version"], "sessions": sessions})
        details: list[dict[str, Any]] = assert_error(response, 422, error_id)["details"]
        return details

    assert (await refused([{"weekday": 8, "half_day": "am"}], "invalid_input"))[0]["field"] == "sessions.0.weekday"
    assert (await refused([{"weekday": 0, "half_day": "am"}], "invalid_input"))[0]["field"] == "sessions.0.weekday"
    assert (await refused([{"weekday": 1, "half_day": "evening"}], "invalid_input"))[0][
        "field"
    ] == "sessions.0.half_day"
    twice = await refused(
        [{"weekday": 1, "half_day": "am"}, {"weekday": 1, "half_day": "am", "room": "2"}], "invalid_sessions"
    )
    assert [d["field"] for d in twice] == ["sessions.1"]
    assert_error(await admin.put(url, json={"sessions": []}), 422, "invalid_input")  # the version is required
    assert (await admin.get(f"/api/kb/doctors/{zhang['id']}")).json() == zhang


async def test_stale_versions_are_409(admin: Client, hospital: dict[str, Any]) -> None:
    zhang = hospital["zhang"]
    first = await admin.patch(f"/api/kb/doctors/{zhang['id']}", json={"version": zhang["version"], "title": "教授"})
    assert first.status_code == 200
    late = await admin.patch(f"/api/kb/doctors/{zhang['id']}", json={"version": zhang["version"], "title": "主任"})
    body = assert_error(late, 409, "stale_version")
    assert body["details"] == {"expected_version": zhang["version"], "current_version": zhang["version"] + 1}
    sessions = {"version": zhang["version"], "sessions": []}
    assert_error(await admin.put(f"/api/kb/doctors/{zhang['id']}/sessions", json=sessions), 409, "stale_version")
    deactivate = {"version": zhang["version"]}
    assert_error(await admin.post(f"/api/kb/doctors/{zhang['id']}/deactivate", json=deactivate), 409, "stale_version")


async def test_a_doctor_who_left_is_deactivated(admin: Client, hospital: dict[str, Any]) -> None:
    zhang = hospital["zhang"]
    response = await admin.post(f"/api/kb/doctors/{zhang['id']}/deactivate")
    assert response.status_code == 200 and response.json()["is_active"] is False
    listed = (await admin.get("/api/kb/doctors")).json()
    assert "张伟" not in {d["name"] for d in listed}
    everyone = (await admin.get("/api/kb/doctors?include_inactive=true")).json()
    assert "张伟" in {d["name"] for d in everyone}
    assert (await availability(admin, zhang["id"], TUESDAY, "pm"))["slots"][0]["status"] == "not_scheduled"


# ---- who may change what -----------------------------------------------------------------------


async def test_agents_read_but_do_not_edit(as_user: Any, hospital: dict[str, Any]) -> None:
    zhang = hospital["zhang"]
    async with as_user("agent1", ["agent"]) as agent:
        assert (await agent.get("/api/kb/doctors")).status_code == 200
        assert (await agent.get(f"/api/kb/doctors/{zhang['id']}")).status_code == 200
        assert (await agent.get("/api/kb/timetable")).status_code == 200
        assert (await availability(agent, zhang["id"], TUESDAY))["doctor_id"] == zhang["id"]
        new = {"code": "D9", "name": "赵六", "site_id": hospital["main"]["id"], "department_id": hospital["xhnk"]["id"]}
        assert_error(await agent.post("/api/kb/doctors", json=new), 403, "permission_denied")
        patch = {"version": zhang["version"], "title": "x"}
        assert_error(await agent.patch(f"/api/kb/doctors/{zhang['id']}", json=patch), 403, "permission_denied")
        stop = {"day": NEXT_TUESDAY, "half_day": "pm", "kind": "stop"}
        assert_error(await agent.post(f"/api/kb/doctors/{zhang['id']}/changes", json=stop), 403, "permission_denied")


async def test_handlers_edit_only_their_own_departments(as_user: Any, hospital: dict[str, Any]) -> None:
    zhang, wang = hospital["zhang"], hospital["wang"]
    main, xhnk, gk = hospital["main"]["id"], hospital["xhnk"]["id"], hospital["gk"]["id"]
    async with as_user("handler-xhnk", ["handler"], department_ids=[xhnk]) as handler:
        own = await handler.patch(f"/api/kb/doctors/{zhang['id']}", json={"version": zhang["version"], "title": "教授"})
        assert own.status_code == 200, own.text
        stop = {"day": NEXT_TUESDAY, "half_day": "pm", "kind": "stop", "reason": "外出会诊"}
        await post(handler, f"/api/kb/doctors/{zhang['id']}/changes", stop)

        other = await handler.patch(f"/api/kb/doctors/{wang['id']}", json={"version": wang["version"], "title": "x"})
        assert_error(other, 403, "permission_denied")
        sessions = {"version": wang["version"], "sessions": []}
        assert_error(await handler.put(f"/api/kb/doctors/{wang['id']}/sessions", json=sessions), 403)
        wang_stop = {"day": "2026-11-30", "half_day": "am", "kind": "stop"}
        assert_error(await handler.post(f"/api/kb/doctors/{wang['id']}/changes", json=wang_stop), 403)
        assert_error(await handler.post(f"/api/kb/doctors/{wang['id']}/deactivate"), 403)
        elsewhere = {"code": "D9", "name": "赵六", "site_id": main, "department_id": gk}
        assert_error(await handler.post("/api/kb/doctors", json=elsewhere), 403, "permission_denied")
        move = {"version": own.json()["version"], "department_id": gk}
        assert_error(await handler.patch(f"/api/kb/doctors/{zhang['id']}", json=move), 403, "permission_denied")
        mine = {"code": "D9", "name": "赵六", "site_id": main, "department_id": xhnk}
        await post(handler, "/api/kb/doctors", mine)


# ---- stops, substitutions and who is in --------------------------------------------------------


async def test_availability_follows_sessions_stops_and_substitutions(admin: Client, hospital: dict[str, Any]) -> None:
    zhang, li = hospital["zhang"], hospital["li"]
    tuesday = await availability(admin, zhang["id"], TUESDAY, "pm")
    slot = tuesday["slots"][0]
    assert (slot["status"], slot["kind"], slot["room"], slot["weekday"]) == (
        "in",
        "专家门诊",
        "门诊楼 3 层 C 区 12 诊室",
        2,
    )
    assert tuesday["answer"] == "张伟 主任医师 2026-11-24（周二）下午 出诊：消化内科专家门诊，门诊楼 3 层 C 区 12 诊室"
    whole_day = await availability(admin, zhang["id"], TUESDAY)
    assert [(s["half_day"], s["status"]) for s in whole_day["slots"]] == [
        ("am", "not_scheduled"),
        ("pm", "in"),
        ("night", "not_scheduled"),
    ]

    stop = await post(
        admin,
        f"/api/kb/doctors/{zhang['id']}/changes",
        {"day": NEXT_TUESDAY, "half_day": "pm", "kind": "stop", "reason": "外出会诊"},
    )
    assert stop["kind"] == "stop" and stop["substitute_id"] is None
    stopped = await availability(admin, zhang["id"], NEXT_TUESDAY, "pm")
    assert stopped["slots"][0]["status"] == "stopped" and stopped["slots"][0]["reason"] == "外出会诊"
    assert stopped["answer"] == "张伟 主任医师 2026-12-01（周二）下午 停诊（外出会诊）"

    substitution = {"day": "2026-12-08", "kind": "substitute", "substitute_id": li["id"], "reason": "休假"}
    added = await post(admin, f"/api/kb/doctors/{zhang['id']}/changes", substitution)
    assert added["half_day"] is None and added["substitute_name"] == "李娜"
    substituted = (await availability(admin, zhang["id"], "2026-12-08", "pm"))["slots"][0]
    assert (substituted["status"], substituted["substitute_name"], substituted["room"]) == (
        "substituted",
        "李娜",
        "门诊楼 3 层 C 区 12 诊室",
    )
    answer = (await availability(admin, zhang["id"], "2026-12-08"))["answer"]
    assert answer == (
        "张伟 主任医师 2026-12-08（周二）：下午 停诊（休假），替诊：李娜 副主任医师，"
        "消化内科专家门诊，门诊楼 3 层 C 区 12 诊室"
    )

    detail = (await admin.get(f"/api/kb/doctors/{zhang['id']}")).json()
    assert [(c["day"], c["kind"]) for c in detail["changes"]] == [(NEXT_TUESDAY, "stop"), ("2026-12-08", "substitute")]
    removed = await admin.delete(f"/api/kb/doctors/{zhang['id']}/changes/{stop['id']}")
    assert removed.status_code == 204
    assert (await availability(admin, zhang["id"], NEXT_TUESDAY, "pm"))["slots"][0]["status"] == "in"
    assert_error(await admin.delete(f"/api/kb/doctors/{zhang['id']}/changes/{stop['id']}"), 404, "not_found")


async def test_changes_are_checked(admin: Client, hospital: dict[str, Any]) -> None:
    zhang, li, wang = hospital["zhang"], hospital["li"], hospital["wang"]
    url = f"/api/kb/doctors/{zhang['id']}/changes"
    past = assert_error(await admin.post(url, json={"day": "2026-11-17", "kind": "stop"}), 422, "date_in_past")
    assert past["details"][0]["field"] == "day"
    wednesday = assert_error(await admin.post(url, json={"day": "2026-11-25", "kind": "stop"}), 422, "not_scheduled")
    assert "张伟" in wednesday["message"] and "2026-11-25" in wednesday["message"]
    morning = {"day": TUESDAY, "half_day": "am", "kind": "stop"}
    assert_error(await admin.post(url, json=morning), 422, "not_scheduled")
    for substitute_id in (None, zhang["id"], wang["id"], 999):
        body = {"day": TUESDAY, "half_day": "pm", "kind": "substitute", "substitute_id": substitute_id}
        assert_error(await admin.post(url, json=body), 422, "invalid_substitute")
    stop_with_substitute = {"day": TUESDAY, "kind": "stop", "substitute_id": li["id"]}
    assert_error(await admin.post(url, json=stop_with_substitute), 422, "invalid_substitute")
    assert_error(await admin.post(url, json={"day": TUESDAY, "kind": "holiday"}), 422, "invalid_input")
    assert_error(await admin.post(url, json={"day": "2026-13-01", "kind": "stop"}), 422, "invalid_input")

    today = await post(admin, url, {"day": TUESDAY, "kind": "stop"})  # the whole day
    assert_error(await admin.post(url, json={"day": TUESDAY, "half_day": "pm", "kind": "stop"}), 409, "change_exists")

    clock.advance(timedelta(days=2))  # Wednesday: Tuesday's stop is history now
    assert (await admin.login("root")).status_code == 200  # the old session timed out meanwhile
    gone = await admin.delete(f"{url}/{today['id']}")
    assert_error(gone, 422, "date_in_past")
    other_doctor = await admin.delete(f"/api/kb/doctors/{li['id']}/changes/{today['id']}")
    assert_error(other_doctor, 404, "not_found")


# ---- the week ----------------------------------------------------------------------------------


async def test_the_week_grid_applies_changes(admin: Client, hospital: dict[str, Any]) -> None:
    zhang, li = hospital["zhang"], hospital["li"]
    await post(admin, f"/api/kb/doctors/{zhang['id']}/changes", {"day": NEXT_TUESDAY, "half_day": "pm", "kind": "stop"})
    await post(
        admin,
        f"/api/kb/doctors/{li['id']}/changes",
        {"day": NEXT_TUESDAY, "kind": "substitute", "substitute_id": zhang["id"]},
    )
    grid = (await admin.get("/api/kb/timetable", params={"start": "2026-11-30"})).json()
    assert grid["start"] == "2026-11-30" and grid["end"] == "2026-12-06" and len(grid["days"]) == 7
    assert [d["name"] for d in grid["departments"]] == ["消化内科", "骨科"]
    xhnk = grid["departments"][0]
    assert xhnk["site_name"] == "院本部"
    rows = {d["name"]: d for d in xhnk["doctors"]}
    assert [(s["day"], s["half_day"], s["status"]) for s in rows["张伟"]["slots"]] == [
        (NEXT_TUESDAY, "pm", "stopped"),
        ("2026-12-04", "am", "in"),
    ]
    assert rows["李娜"]["slots"][0]["status"] == "substituted" and rows["李娜"]["slots"][0]["substitute_name"] == "张伟"

    this_week = (await admin.get("/api/kb/timetable")).json()
    assert this_week["start"] == "2026-11-23"  # the Monday of the hospital's current week
    only_gk = (await admin.get("/api/kb/timetable", params={"department_id": hospital["gk"]["id"]})).json()
    assert [d["name"] for d in only_gk["departments"]] == ["骨科"]
    east = (await admin.get("/api/kb/timetable", params={"site_id": hospital["east"]["id"]})).json()
    assert east["departments"] == []
    one = (await admin.get("/api/kb/timetable", params={"doctor_id": zhang["id"]})).json()
    assert [d["name"] for dep in one["departments"] for d in dep["doctors"]] == ["张伟"]
    assert_error(await admin.get("/api/kb/timetable", params={"start": "9999-12-31"}), 422, "invalid_input")


# ---- finding doctors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "names"),
    [
        ("张伟", ["张伟"]),
        ("张", ["张伟"]),
        ("zhang", ["张伟"]),
        ("ZhangWei", ["张伟"]),
        ("zw", ["张伟"]),
        ("wei", ["张伟"]),
        ("l", ["李娜"]),
        ("主任", ["李娜", "张伟"]),
        ("幽门螺杆菌", ["张伟"]),
        ("d003", ["王强"]),
        ("xyz", []),
    ],
)
async def test_doctors_are_found_by_name_pinyin_initials_title_and_speciality(
    admin: Client, hospital: dict[str, Any], q: str, names: list[str]
) -> None:
    found = (await admin.get("/api/kb/doctors", params={"q": q})).json()
    assert [d["name"] for d in found] == names


# ---- demo data ---------------------------------------------------------------------------------


async def test_the_demo_timetables_load_once(admin: Client, hospital: dict[str, Any], db: Any) -> None:
    codes = {"XHNK": hospital["xhnk"]["id"], "GK": hospital["gk"]["id"], "XHNK-E": hospital["xhnk_e"]["id"]}
    sites = {"MAIN": hospital["main"]["id"], "EAST": hospital["east"]["id"]}
    data = Path(__file__).parent / "data" / "doctors_demo.json"

    async def load(path: Path = data) -> dict[str, Any]:
        async with db.sessions() as session, session.begin():
            await load_demo_timetables(session, departments=codes, sites=sites, path=path)
        doctors = (await admin.get("/api/kb/doctors", params={"limit": 1000})).json()
        details = [(await admin.get(f"/api/kb/doctors/{d['id']}")).json() for d in doctors]
        return {d["code"]: d for d in details}

    await load(data.parent / "no-such-file.json")  # nothing to load is fine
    first = await load()
    assert {"DEMO-001", "DEMO-002", "DEMO-003"} <= set(first) and "DEMO-004" not in first
    chen = first["DEMO-001"]
    assert chen["sessions"][0] == {
        "weekday": 1,
        "half_day": "am",
        "kind": "专家门诊",
        "room": "门诊楼 3 层 C 区 12 诊室",
        "note": "挂号费 50 元",
    }
    changes = [c for d in first.values() for c in d["changes"]]
    assert {c["kind"] for c in changes} == {"stop", "substitute"}
    assert all("2026-11-30" <= c["day"] <= "2026-12-06" for c in changes)  # next week
    assert await load() == first
