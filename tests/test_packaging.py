"""Real components: a non-editable wheel in a fresh venv, and `planner serve` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.serving import call, free_port, planner_serve

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_plain_wheel_install_gives_a_working_planner_from_any_directory(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
    )
    # The benchmark is a development tool beside the package: never shipped.
    shipped = [n for wheel in wheels.glob("*.whl") for n in zipfile.ZipFile(wheel).namelist()]
    assert not [n for n in shipped if n.startswith(("bench/", "planner/bench"))], shipped
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The wheel itself, not editable and without the source tree; its dependencies come
    # from this test's environment so that the test needs no network.
    subprocess.run(
        [
            venv / "bin" / "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            *map(str, wheels.glob("*.whl")),
        ],
        check=True,
    )
    site = subprocess.run(
        [
            venv / "bin" / "python",
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PLANNER_"))}

    check = subprocess.run(
        [venv / "bin" / "planner", "protocols", "check"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    plan = subprocess.run(
        [
            venv / "bin" / "planner",
            "plan",
            "--site",
            "femoral_neck",
            "--type",
            "compression",
            "--diagnosis-date",
            "2026-11-20",
            "--format",
            "ics",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )

    assert check.returncode == 0, check.stderr
    assert f"Built-in protocols: {site}" in check.stdout, check.stdout
    assert "OK femoral-neck-compression-conservative" in check.stdout
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("BEGIN:VCALENDAR")


@contextmanager
def serving(data_dir: Path, port: int) -> Iterator[str]:
    """``planner serve`` on the embedded SQLite database in ``data_dir``."""
    with planner_serve(
        {"PLANNER_DATA_DIR": str(data_dir), "PLANNER_DATABASE_URL": ""}, port=port
    ) as base:
        yield base


@pytest.mark.slow
def test_planner_serve_keeps_plans_in_sqlite_across_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "PLANNER_DATA_DIR": str(data_dir)}
    env.pop("PLANNER_DATABASE_URL", None)
    created = subprocess.run(
        [sys.executable, "-m", "planner", "keys", "create", "e2e", "--org", "clinic"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    body = {
        "diagnosis_date": "2026-11-20",
        "injury": {"site": "femoral_neck", "type": "compression"},
    }

    port = free_port()
    with serving(data_dir, port) as base:
        created = call("POST", base + "/v1/plans", key=key, body=body)
        assert created.status == 201, created.body
        plan, location = created.body, created.headers["Location"]
        assert call("GET", base + location, key=key).status == 200
        assert call("GET", base + "/v1/plans", key=key + "x").status == 401

    assert (data_dir / "planner.sqlite3").exists()
    with serving(data_dir, free_port()) as base:
        again = call("GET", base + location, key=key)
        assert again.status == 200 and again.body == plan
        ics = call("GET", base + location + ".ics", key=key)
        assert ics.status == 200 and ics.body.startswith(b"BEGIN:VCALENDAR")
        assert ics.headers["Content-Type"] == "text/calendar; charset=utf-8"


def test_access_log_never_shows_a_feed_token() -> None:
    from types import SimpleNamespace

    from planner.web.server import RedactingLogger, redact

    token = "t0kenT0KENt0kenT0KENt0kenT0KENt0kenT0KENabc"
    assert redact(f"GET /feeds/{token}.ics HTTP/1.1") == "GET /feeds/<redacted> HTTP/1.1"
    assert redact(f"/p/{token}") == "/p/<redacted>"
    assert redact("/v1/plans/abc") == "/v1/plans/abc"
    # percent-encoded paths are routed like plain ones, so they are redacted alike
    assert redact(f"GET /%66eeds/{token}.ics HTTP/1.1") == "GET /feeds/<redacted> HTTP/1.1"
    assert redact(f"/%70/{token}") == "/p/<redacted>"
    assert redact(f"/feeds%2F{token}.ics") == "/feeds/<redacted>"
    assert redact(f"//feeds//{token}.ics") == "/feeds/<redacted>"
    assert token not in redact(f"/%66%65%65%64%73/{token[:5]}%{ord(token[5]):02X}{token[6:]}")

    logger = RedactingLogger.__new__(RedactingLogger)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/feeds/{token}.ics",
        "PATH_INFO": f"/feeds/{token}.ics",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://example.test/p/{token}",
    }
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    elapsed = SimpleNamespace(seconds=0, microseconds=5)
    logger.cfg = SimpleNamespace(access_log_format="%(r)s")  # type: ignore[attr-defined]
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ, elapsed)
    assert token not in " ".join(str(v) for v in atoms.values())
