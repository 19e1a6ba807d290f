"""Bad input answers the error shape, in the user's language, and writes nothing."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from helpers import Client, assert_error
from patientline.core.observability import JsonFormatter


async def test_unknown_route_and_method(admin: Client) -> None:
    assert_error(await admin.get("/api/nowhere"), 404, "not_found")
    assert_error(await admin.put("/api/auth/me", json={}), 405, "method_not_allowed")


async def test_malformed_json_unknown_fields_and_wrong_types(admin: Client) -> None:
    raw = await admin.post(
        "/api/directory/skills", content=b'{"code": "A",', headers={"content-type": "application/json"}
    )
    assert_error(raw, 400, "malformed_json")
    body = assert_error(
        await admin.post("/api/directory/skills", json={"code": "A", "name": "x", "colour": "red"}),
        422,
        "invalid_input",
    )
    assert body["details"][0]["field"] == "colour"
    assert_error(await admin.post("/api/directory/skills", json={"code": ["A"], "name": "x"}), 422)
    assert_error(await admin.get("/api/directory/skills/not-a-number"), 404)
    assert_error(await admin.get("/api/directory/skills/0"), 422)
    assert_error(await admin.get("/api/directory/skills/99999999999"), 422)
    assert (await admin.get("/api/directory/skills")).json() == []


async def test_oversized_bodies_are_refused_before_parsing(admin: Client) -> None:
    body = b'{"code": "A", "name": "' + b"x" * (1024 * 1024) + b'"}'
    assert_error(
        await admin.post("/api/directory/skills", content=body, headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )
    assert (await admin.get("/api/directory/skills")).json() == []


async def test_errors_speak_the_users_language(admin: Client, anon: Client) -> None:
    admin.http.cookies.set("pl_lang", "zh_CN")
    zh = assert_error(await admin.get("/api/nowhere"), 404)
    admin.http.cookies.set("pl_lang", "en")
    en = assert_error(await admin.get("/api/nowhere"), 404)
    assert en["message"] == "The page or record you asked for does not exist."
    assert zh["message"] != en["message"]


async def test_html_pages_show_readable_errors(admin: Client, anon: Client) -> None:
    missing = await admin.get("/directory/skills/12345", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "not_found" in missing.text
    redirect = await anon.get("/admin/users")
    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/login?next=")


async def test_unexpected_failures_are_500_with_a_request_id_and_no_trace(app: Any, admin: Client) -> None:
    @app.get("/api/test-boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", cookies=admin.http.cookies) as http:
        response = await http.get("/api/test-boom", headers={"x-request-id": "req-123"})
    body = assert_error(response, 500, "internal_error")
    assert body["details"] == {"request_id": "req-123"}
    assert "secret" not in body["message"]


async def test_responses_carry_request_ids_and_security_headers(anon: Client) -> None:
    response = await anon.get("/healthz")
    assert response.headers["x-request-id"]
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]


async def test_access_log_is_json_with_the_route_template_not_the_query(
    admin: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="patientline.access")
    await admin.get("/api/directory/staff", params={"q": "13800138000"}, headers={"x-request-id": "abc123"})
    record = next(r for r in caplog.records if r.name == "patientline.access")
    line = json.loads(JsonFormatter().format(record))
    assert line["route"] == "/api/directory/staff" and line["status"] == 200
    assert line["request_id"] == "abc123"
    assert "13800138000" not in json.dumps(line)
