"""Desk-phone passwords at the SIP front: a phone registers only as its own account and with the password
PatientLine issued (kept as a SIP digest); a new password replaces the old one within seconds, a revoked
one stops working, and only the owner or an admin may see, set or revoke it (audited)."""

from __future__ import annotations

import time

import pytest
from phone_line import PASSWORD, Line
from sip import Phone, tools_missing

pytestmark = pytest.mark.skipif(bool(tools_missing()), reason=f"missing {tools_missing()}")
USER = "handler-xnk"  # a demo account no other voice test registers


def registration(line: Line, user: str, password: str, *, as_user: str | None = None) -> int:
    """The SIP status a phone gets registering as `as_user` (else `user`) with `user`'s credentials."""
    phone = Phone(as_user or user, next(line.ports), line.front_port, line.var, password)
    phone.login = user
    try:
        return int(phone.start().registered["code"])
    finally:
        phone.stop()


def eventually(line: Line, user: str, password: str, code: int) -> None:
    """The registrar learns of a change within its sync interval (3 s)."""
    for _ in range(10):
        if registration(line, user, password) == code:
            return
        time.sleep(1)
    raise AssertionError(f"{user} never got {code}")


def test_a_phone_registers_only_with_its_own_accounts_current_password(line: Line) -> None:
    with line.client(USER) as owner, line.client("agent01") as other, line.client("admin") as admin:
        me = owner.get("/api/auth/me").json()["id"]
        shown = owner.get(f"/api/voice/phones/{me}").json()
        assert shown["username"] == USER and shown["has_password"] and shown["password"] is None
        assert shown["registrar"] == f"sip:127.0.0.1:{line.front_port}" and shown["realm"] == "patientline"
        assert registration(line, USER, PASSWORD) == 200  # the demo's phones use the demo password
        assert registration(line, USER, "wrong-password") in (401, 403)
        assert registration(line, "agent01", PASSWORD, as_user=USER) == 403  # agent01 posing as USER's phone

        for refused in (other.get(f"/api/voice/phones/{me}"), other.post(f"/api/voice/phones/{me}/password"),
                        other.delete(f"/api/voice/phones/{me}/password")):  # fmt: skip
            assert refused.status_code == 403, refused.text
        assert admin.get("/api/voice/phones/999999").status_code == 404
        assert owner.get("/api/voice/phones/0").status_code == 422

        issued = owner.post(f"/api/voice/phones/{me}/password")
        assert issued.status_code == 201, issued.text
        password = issued.json()["password"]
        assert len(password) == 12 and password != PASSWORD
        eventually(line, USER, password, 200)
        assert registration(line, USER, PASSWORD) in (401, 403)  # the old password no longer works

        assert admin.delete(f"/api/voice/phones/{me}/password").status_code == 204
        assert owner.get(f"/api/voice/phones/{me}").json()["has_password"] is False
        eventually(line, USER, password, 401)

        reset = admin.post(f"/api/voice/phones/{me}/password").json()["password"]
        eventually(line, USER, reset, 200)
        rows = admin.get("/api/audit", params={"action": "voice.phone_password", "target_id": str(me)}).json()
        actions = [row["action"] for row in rows]
        assert actions.count("voice.phone_password.set") >= 2 and "voice.phone_password.revoke" in actions
