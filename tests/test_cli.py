"""The command line: migrate, seed-demo (idempotent), create-admin, calendar check and add-working-days,
contacts retention."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from live import BIN, cli, server_env


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = server_env(tmp_path)
    cli(environment, "migrate")
    return environment


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_help_lists_the_commands() -> None:
    out = subprocess.run([str(BIN), "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("serve", "migrate", "seed-demo", "create-admin", "calendar"):
        assert command in out


def test_calendar_add_working_days_follows_the_civil_code(env: dict[str, str]) -> None:
    assert (
        cli(env, "calendar", "add-working-days", "2026-09-30T10:00:00+08:00", "5").strip()
        == "2026-10-14T00:00:00+08:00"
    )
    assert cli(env, "calendar", "add-working-days", "2026-11-20T21:30", "1").strip() == "2026-11-24T00:00:00+08:00"
    explained = cli(env, "calendar", "add-working-days", "2026-09-30", "5", "--explain")
    assert "National Day" in explained and '"make-up workday"' in explained
    assert run(env, "calendar", "add-working-days", "yesterday", "5").returncode != 0
    assert run(env, "calendar", "add-working-days", "2026-09-30", "0").returncode != 0


def test_calendar_check_reports_coverage(env: dict[str, str]) -> None:
    assert "built-in" in cli(env, "calendar", "check", "2026")
    missing = run(env, "calendar", "check", "2027")
    assert missing.returncode == 1 and "NOT covered" in missing.stdout


def test_create_admin_and_seed_demo_once(env: dict[str, str], tmp_path: Path) -> None:
    assert "created administrator" in cli(env, "create-admin", "boss", "--password", "Strong-Pass-2026")
    duplicate = run(env, "create-admin", "boss", "--password", "Strong-Pass-2026")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    weak = run(env, "create-admin", "weak", "--password", "123")
    assert weak.returncode == 1
    assert "loaded demo hospital" in cli(env, "seed-demo")
    assert "already loaded" in cli(env, "seed-demo")
    with sqlite3.connect(tmp_path / "patientline.db") as db:
        sites = db.execute("SELECT count(*) FROM sites").fetchone()[0]
        agents = db.execute("SELECT count(*) FROM users WHERE roles LIKE '%agent%'").fetchone()[0]
        supervisors = db.execute("SELECT count(*) FROM users WHERE roles LIKE '%supervisor%'").fetchone()[0]
        names = {r[0] for r in db.execute("SELECT name FROM departments")}
        flows = db.execute("SELECT number, live_version FROM ivr_flows").fetchall()
    assert sites == 2 and agents == 12 and supervisors == 2
    assert flows == [("8585", 1)]  # the hotline's IVR flow, published
    import json

    expected = json.loads((Path(__file__).parent / "data" / "departments.json").read_text())
    assert set(expected["departments"]) <= names


def test_contacts_retention_anonymises_what_is_past_the_period(env: dict[str, str], tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    recent = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(tmp_path / "patientline.db") as db:
        for reference, started in (("C-OLD", "2020-01-02 03:04:05"), ("C-NEW", recent)):
            db.execute(
                "INSERT INTO contacts (reference, channel, direction, status, started_at, verified_by, phone, "
                "caller_name, subject, notes, version, created_at, updated_at) "
                "VALUES (?, 'call', 'inbound', 'closed', ?, '', '+8613900001234', '王小明', 'x', 'y', 1, ?, ?)",
                (reference, started, started, started),
            )
    assert "anonymised 1 contact(s) older than 365 days" in cli(env, "contacts", "retention", "--days", "365")
    with sqlite3.connect(tmp_path / "patientline.db") as db:
        rows = dict(db.execute("SELECT reference, phone FROM contacts").fetchall())
    assert rows == {"C-OLD": None, "C-NEW": "+8613900001234"}
    assert run(env, "contacts", "retention", "--days", "7").returncode != 0  # below the 30-day floor
