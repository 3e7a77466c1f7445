"""The `planner` command line: offline plans, keys, protocol checks, schema upgrades."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from icalendar import Calendar

from planner.cli import main
from planner.store import Store
from planner.web import create_app

PLAN_ARGS = [
    "plan",
    "--site",
    "femoral_neck",
    "--type",
    "compression",
    "--diagnosis-date",
    "2026-11-20",
    "--fracture-line-pct",
    "20",
    "--timezone",
    "America/New_York",
    "--run-days",
    "MO,WE,FR",
    "--session-time",
    "07:00",
]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PLANNER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    return CliRunner()


def comparable(plan: dict[str, Any]) -> dict[str, Any]:
    """A plan without what legitimately differs between two makings: id, time, UIDs."""
    ignored = ("id", "created_at", "updated_at", "links", "feed")
    plan = {k: v for k, v in plan.items() if k not in ignored}
    plan["sessions"] = [{k: v for k, v in s.items() if k != "uid"} for s in plan["sessions"]]
    return plan


def test_plan_prints_the_same_plan_the_api_makes(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, PLAN_ARGS + ["--format", "json"])
    assert result.exit_code == 0, result.output
    offline = json.loads(result.stdout)

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'api.sqlite3'}"})
    store: Store = app.extensions["planner"]["store"]
    _, secret = store.create_key("k", "org")
    body = {
        "diagnosis_date": "2026-11-20",
        "timezone": "America/New_York",
        "injury": {"site": "femoral_neck", "type": "compression", "fracture_line_pct": 20},
        "schedule": {"run_days": ["MO", "WE", "FR"], "session_time": "07:00"},
    }
    online = app.test_client().post(
        "/v1/plans", json=body, headers={"Authorization": f"Bearer {secret}"}
    )
    store.dispose()

    assert online.status_code == 201
    assert comparable(offline) == comparable(online.get_json())


def test_plan_writes_icalendar_to_a_file(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "plan.ics"

    result = runner.invoke(
        main, PLAN_ARGS + ["--format", "ics", "--out", str(out), "--plan-id", "p-1"]
    )

    assert result.exit_code == 0, result.output
    calendar = Calendar.from_ical(out.read_bytes())
    assert calendar.get("METHOD") == "PUBLISH"
    assert len(calendar.walk("VEVENT")) > 100


def test_plan_rejects_a_contradictory_classification(runner: CliRunner) -> None:
    result = runner.invoke(main, PLAN_ARGS + ["--no-fracture-line"])

    assert result.exit_code == 2
    assert "injury.fracture_line" in result.stderr


def test_plan_rejects_bad_options_with_the_field_named(runner: CliRunner) -> None:
    result = runner.invoke(main, PLAN_ARGS + ["--run-days", "MO,XX"])

    assert result.exit_code == 2
    assert "schedule.run_days" in result.stderr


def test_keys_create_prints_the_key_alone_on_the_last_line(runner: CliRunner) -> None:
    result = runner.invoke(main, ["keys", "create", "coach", "--org", "clinic-a"])

    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert " " not in secret and secret.startswith("sbk_")
    listed = runner.invoke(main, ["keys", "list"])
    assert "clinic-a" in listed.stdout and secret not in listed.stdout


def test_a_cli_key_authenticates_against_the_api(runner: CliRunner, tmp_path: Path) -> None:
    secret = runner.invoke(main, ["keys", "create", "coach"]).stdout.strip().splitlines()[-1]
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}"})
    try:
        response = app.test_client().get("/v1/plans", headers={"Authorization": f"Bearer {secret}"})
    finally:
        app.extensions["planner"]["store"].dispose()
    assert response.status_code == 200


def test_keys_create_with_scopes_as_the_readme_shows(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["keys", "create", "ehr", "--org", "clinic-a", "--scope", "plans:read"]
    )

    assert result.exit_code == 0, result.output
    assert "with plans:read." in result.stdout
    listed = runner.invoke(main, ["keys", "list"]).stdout
    assert "\tehr\tactive\tplans:read\t" in listed
    two = ["--scope", "plans:read", "--scope", "webhooks:manage"]
    assert runner.invoke(main, ["keys", "create", "hooks", *two]).exit_code == 0
    assert "plans:read,webhooks:manage" in runner.invoke(main, ["keys", "list"]).stdout


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", ""],
        ["keys", "create", "x", "--org", " "],
        ["keys", "create", "x", "--scope", "root"],
    ],
)
def test_keys_create_refuses_bad_input_in_one_line(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(main, args)

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_keys_revoke(runner: CliRunner) -> None:
    created = runner.invoke(main, ["keys", "create", "temp"]).stdout.strip().splitlines()
    prefix = created[-1].split("_")[1]

    assert runner.invoke(main, ["keys", "revoke", prefix]).exit_code == 0
    assert "revoked" in runner.invoke(main, ["keys", "list"]).stdout
    assert runner.invoke(main, ["keys", "revoke", "nonexistent"]).exit_code == 1


def test_protocols_check_passes_on_the_shipped_files(runner: CliRunner) -> None:
    result = runner.invoke(main, ["protocols", "check"])

    assert result.exit_code == 0, result.output
    assert "OK femoral-neck-compression-conservative 1.2.0" in result.stdout
    assert "OK femoral-neck-surgical-referral 1.1.0" in result.stdout


def test_protocols_check_names_the_broken_file_and_field(runner: CliRunner, tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[1] / "protocols"
    broken = tmp_path / "clinic"
    broken.mkdir()
    text = (shipped / "femoral-neck-surgical-referral.toml").read_text(encoding="utf-8")
    text = text.replace('id = "femoral-neck-surgical-referral"', 'id = "clinic-referral"')
    text = text.replace('version = "1.1.0"', 'version = "one"')
    (broken / "clinic-referral.toml").write_text(text, encoding="utf-8")

    result = runner.invoke(main, ["protocols", "check", str(broken)])

    assert result.exit_code == 1
    assert "clinic-referral.toml" in result.stderr and "version" in result.stderr


def test_db_upgrade_is_idempotent(runner: CliRunner) -> None:
    first = runner.invoke(main, ["db", "upgrade"])
    second = runner.invoke(main, ["db", "upgrade"])

    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout


def test_plan_takes_a_grading_system_and_a_risk_assessment(runner: CliRunner) -> None:
    graded = runner.invoke(
        main, PLAN_ARGS + ["--mri-grade", "4", "--grading-system", "nattiv", "--format", "json"]
    )
    assessed = runner.invoke(
        main, PLAN_ARGS + ["--risk-assessment", '{"bmi": 17.0, "menses_last_12_months": 4}']
    )
    broken = runner.invoke(main, PLAN_ARGS + ["--risk-assessment", "{bmi"])

    assert graded.exit_code == 0, graded.output
    walking = next(p for p in json.loads(graded.stdout)["phases"] if p["key"] == "walking")
    assert walking["days"] == 28
    assert assessed.exit_code == 0, assessed.output
    assert json.loads(assessed.stdout)["risk_assessment"]["score"] >= 6
    assert broken.exit_code == 2 and "risk_assessment" in broken.stderr


def test_plan_refuses_a_diagnosis_date_in_the_future(runner: CliRunner) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    args = [a if a != "2026-11-20" else future for a in PLAN_ARGS]

    result = runner.invoke(main, args + ["--format", "json"])

    assert result.exit_code == 2, result.output
    assert f"diagnosis_date: {future} is in the future" in result.stderr
    assert not result.stdout
