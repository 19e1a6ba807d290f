"""/admin/his: supervisors and administrators see the adapter and its breaker, test the connection and
make the simulated HIS slow or failing (audited); agents may not; bad settings are clear errors."""

from __future__ import annotations

from typing import Any

from helpers import assert_error
from patientline.core.auth.actor import SYSTEM
from patientline.patients import index

JSON = {"Accept": "application/json"}  # as app.js asks: errors answer the JSON shape, not a page


async def test_the_page_and_the_simulator_controls(app: Any, admin: Any) -> None:
    page = await admin.get("/admin/his")
    assert page.status_code == 200
    assert "模拟" in page.text and "测试连接" in page.text  # zh-CN by default
    partial = await admin.get("/admin/his", headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text and "熔断" in partial.text

    tested = await admin.post("/admin/his/test", headers=JSON)
    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] is True and tested.json()["adapter"] == "simulator"

    changed = await admin.put("/admin/his/simulator", json={"latency_ms": 0, "failure_percent": 100}, headers=JSON)
    assert changed.status_code == 200, changed.text
    simulator = app.state.pl.his.simulator
    assert (simulator.latency_ms, simulator.failure_rate) == (0, 1.0)

    failed = await admin.post("/admin/his/test", headers=JSON)
    assert failed.json()["ok"] is False and failed.json()["message"] == "医院系统暂不可用"

    audit = (await admin.get("/api/audit", params={"target_type": "his"})).json()
    actions = [entry["action"] for entry in audit]
    assert actions == ["his.connection_tested", "his.simulator_changed", "his.connection_tested"]
    assert audit[1]["before"] == {"latency_ms": 0, "failure_percent": 0}
    assert audit[1]["after"] == {"latency_ms": 0, "failure_percent": 100}

    await admin.put("/admin/his/simulator", json={"latency_ms": 0, "failure_percent": 0}, headers=JSON)
    await admin.get("/lang/en", params={"next": "/admin/his"})
    english = await admin.get("/admin/his")
    assert "Test the connection" in english.text and "Circuit breaker" in english.text


async def test_degraded_mode_reaches_the_overview(app: Any, admin: Any, db: Any) -> None:
    """What the admin page changes is what the workbench's gateway sees."""
    gateway = app.state.pl.his
    record = next(iter(gateway.simulator.people.values())).record
    async with db.sessions() as session, session.begin():
        patient = await index.upsert_from_his(session, actor=SYSTEM, record=record)
        assert (await gateway.overview(session, patient)).live
    await admin.put("/admin/his/simulator", json={"latency_ms": 0, "failure_percent": 100}, headers=JSON)
    async with db.sessions() as session, session.begin():
        patient = await index.get(session, patient.id)
        degraded = await gateway.overview(session, patient)
    assert not degraded.live and degraded.visits.fetched_at is not None


async def test_bad_settings_and_permissions(admin: Any, as_user: Any) -> None:
    assert_error(
        await admin.put("/admin/his/simulator", json={"latency_ms": -1, "failure_percent": 0}, headers=JSON), 422
    )
    assert_error(
        await admin.put("/admin/his/simulator", json={"latency_ms": 10, "failure_percent": 101}, headers=JSON), 422
    )
    assert_error(
        await admin.put("/admin/his/simulator", json={"latency_ms": "10", "failure_percent": 1}, headers=JSON), 422
    )
    assert_error(await admin.put("/admin/his/simulator", json={"latency_ms": 10}, headers=JSON), 422)
    assert_error(
        await admin.put("/admin/his/simulator", json={"latency_ms": 1, "failure_percent": 0, "x": 1}, headers=JSON), 422
    )
    async with as_user("agent1", ["agent"]) as agent:
        assert (await agent.get("/admin/his")).status_code == 403
        assert_error(await agent.post("/admin/his/test", headers=JSON), 403)
        assert_error(
            await agent.put("/admin/his/simulator", json={"latency_ms": 0, "failure_percent": 100}, headers=JSON), 403
        )
    async with as_user("super1", ["supervisor"]) as supervisor:
        assert (await supervisor.get("/admin/his")).status_code == 200


async def test_without_the_simulator(app: Any, admin: Any) -> None:
    from patientline.patients.gateway import HisGateway

    app.state.pl.his = HisGateway(None, not_connected_reason="PATIENTLINE_HIS_ADAPTER is off")
    page = await admin.get("/admin/his")
    assert page.status_code == 200 and "未连接医院系统" in page.text and "PATIENTLINE_HIS_ADAPTER" in page.text
    assert_error(
        await admin.put("/admin/his/simulator", json={"latency_ms": 0, "failure_percent": 0}, headers=JSON),
        409,
        "not_simulator",
    )
    tested = await admin.post("/admin/his/test", headers=JSON)
    assert tested.json()["ok"] is False and tested.json()["reason"] == "not_connected"
