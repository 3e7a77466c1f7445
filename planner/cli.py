"""The ``planner`` command: serve the API, make plans offline, manage keys and protocols."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import click
from marshmallow import ValidationError
from sqlalchemy.engine import make_url

from planner import __version__
from planner.catalog import CatalogErrors, builtin_protocols_dir, load_catalog, protocol_dirs
from planner.domain.errors import InvalidProtocol, PlannerError
from planner.domain.model import FractureSide, Laterality, RiskFactor, Site
from planner.export import to_ical, to_json
from planner.schemas.api import PlanCreateSchema
from planner.schemas.protocol_file import flatten_errors
from planner.service import build_plan, utcnow
from planner.store import SCOPES, Store, database_url_from_env


@click.group()
@click.version_option(__version__, prog_name="planner")
def main() -> None:
    """stride-back: staged, dated return-to-run plans for bone stress injuries."""


# --------------------------------------------------------------------------- serve


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Run the API under gunicorn (a production WSGI server).

    The database schema is created or upgraded once, before the workers start.
    """
    from planner.web.server import run

    url = database_url_from_env()
    store = Store(url)
    store.upgrade()
    store.dispose()
    click.echo(f"Database ready: {_display(url)}", err=True)
    run(host=host, port=port, workers=workers, access_log=access_log)


@main.command()
@click.option(
    "--interval",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0.05, 60),
    help="Seconds between polls of the outbox when idle.",
)
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def worker(interval: float, once: bool) -> None:
    """Deliver webhooks from the database outbox until stopped (SIGINT/SIGTERM).

    Run as many as you like (e.g. one per host with PostgreSQL): they never send the same
    message at the same time. Receivers on private addresses need
    PLANNER_WEBHOOKS_ALLOW_PRIVATE=true.
    """
    import signal
    import threading

    from planner.service.delivery import Deliverer, allow_private_from_env

    store = _store()
    deliverer = Deliverer(store, allow_private=allow_private_from_env())
    if once:
        click.echo(f"Tried {deliverer.run_once()} deliveries.", err=True)
        store.dispose()
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"Delivering webhooks from {_display(database_url_from_env())}", err=True)
    deliverer.run_forever(stop, interval)
    store.dispose()


# --------------------------------------------------------------------------- plan


def _run_days(_: click.Context, __: click.Parameter, value: str | None) -> list[str] | None:
    return [d.strip().upper() for d in value.split(",") if d.strip()] if value else None


@main.command()
@click.option("--site", required=True, type=click.Choice([s.value for s in Site]))
@click.option("--type", "side", type=click.Choice([t.value for t in FractureSide]))
@click.option("--diagnosis-date", required=True, help="YYYY-MM-DD")
@click.option("--start-date", help="Day 0 (YYYY-MM-DD); defaults to the diagnosis date.")
@click.option("--laterality", type=click.Choice([s.value for s in Laterality]))
@click.option("--mri-grade", type=int)
@click.option(
    "--grading-system",
    type=click.Choice(["nattiv", "fredericson", "arendt", "kaeding_miller"]),
    help="The MRI grading system of --mri-grade.",
)
@click.option("--fracture-line/--no-fracture-line", default=None)
@click.option("--fracture-line-pct", type=int, help="Line length as % of neck width.")
@click.option("--complete", is_flag=True, default=None)
@click.option("--displaced", is_flag=True, default=None)
@click.option("--hip-effusion", is_flag=True, default=None)
@click.option("--progression-on-imaging", is_flag=True, default=None)
@click.option("--cannot-bear-weight", is_flag=True, default=False)
@click.option(
    "--risk-factor",
    "risk_factors",
    multiple=True,
    type=click.Choice([r.value for r in RiskFactor]),
    help="Repeat for several.",
)
@click.option(
    "--risk-assessment",
    help='Triad risk assessment as JSON, e.g. \'{"bmi": 17.8, "menses_last_12_months": 7}\'.',
)
@click.option("--timezone", default="UTC", show_default=True, help="IANA name.")
@click.option("--run-days", callback=_run_days, help="e.g. MO,WE,FR (the default).")
@click.option("--session-time", help="HH:MM local; omit for all-day sessions.")
@click.option("--athlete-reference")
@click.option("--athlete-name")
@click.option(
    "--format", "fmt", type=click.Choice(["json", "ics"]), default="json", show_default=True
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout."
)
@click.option("--plan-id", help="Id for the plan (default: a new UUID).")
@click.option(
    "--protocols-dir",
    "protocols_dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Extra directory of protocol files.",
)
def plan(**options: Any) -> None:
    """Make a plan offline, exactly as POST /v1/plans would, as JSON or iCalendar."""
    payload = _payload(options)
    try:
        validated = PlanCreateSchema().load(payload)
        made = build_plan(
            validated,
            load_catalog(
                [
                    *protocol_dirs(os.environ.get("PLANNER_PROTOCOLS_DIRS")),
                    *options["protocols_dirs"],
                ]
            ),
            plan_id=options["plan_id"] or str(uuid.uuid4()),
            created_at=utcnow(),
        )
    except ValidationError as exc:
        _fail_with_errors("Invalid plan request.", flatten_errors(exc.messages))
    except PlannerError as exc:
        _fail_with_errors(exc.detail, exc.errors)
    if options["fmt"] == "ics":
        body = to_ical.render(made)
    else:
        body = (json.dumps(to_json.render(made), ensure_ascii=False, indent=2) + "\n").encode()
    if options["out"]:
        options["out"].write_bytes(body)
        click.echo(f"Wrote {options['out']} ({len(made.sessions)} sessions).", err=True)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()


def _payload(o: dict[str, Any]) -> dict[str, Any]:
    """CLI flags → the same JSON body the API takes (only what was given)."""
    injury = {
        "site": o["site"],
        "type": o["side"],
        "laterality": o["laterality"],
        "mri_grade": o["mri_grade"],
        "grading_system": o["grading_system"],
        "fracture_line": o["fracture_line"],
        "fracture_line_pct": o["fracture_line_pct"],
        "complete": o["complete"],
        "displaced": o["displaced"],
        "hip_effusion": o["hip_effusion"],
        "progression_on_imaging": o["progression_on_imaging"],
        "can_bear_weight": False if o["cannot_bear_weight"] else None,
    }
    schedule = {"run_days": o["run_days"], "session_time": o["session_time"]}
    athlete = {"reference": o["athlete_reference"], "name": o["athlete_name"]}
    payload: dict[str, Any] = {
        "diagnosis_date": o["diagnosis_date"],
        "start_date": o["start_date"],
        "timezone": o["timezone"],
        "injury": {k: v for k, v in injury.items() if v is not None},
        "risk_factors": list(o["risk_factors"]),
        "schedule": {k: v for k, v in schedule.items() if v is not None},
        "athlete": {k: v for k, v in athlete.items() if v is not None},
    }
    if o["risk_assessment"]:
        try:
            payload["risk_assessment"] = json.loads(o["risk_assessment"])
        except json.JSONDecodeError as exc:
            _fail_with_errors("Invalid --risk-assessment.", {"risk_assessment": [str(exc)]})
    return {k: v for k, v in payload.items() if v is not None}


def _fail_with_errors(detail: str, errors: dict[str, list[str]]) -> None:
    click.echo(f"error: {detail}", err=True)
    for field, messages in sorted(errors.items()):
        click.echo(f"  {field}: {' '.join(messages)}", err=True)
    sys.exit(2)


# --------------------------------------------------------------------------- keys


@main.group()
def keys() -> None:
    """Manage API keys (stored hashed; shown once)."""


@keys.command("create")
@click.argument("name")
@click.option(
    "--org", default="default", show_default=True, help="Organisation the key belongs to."
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPES),
    help="What the key may do; repeat for several (default: every scope).",
)
def keys_create(name: str, org: str, scopes: tuple[str, ...]) -> None:
    """Create a key; the key itself is printed alone on the last line."""
    for value, what in ((name, "NAME"), (org, "--org")):
        if not value.strip():
            raise click.UsageError(f"{what} must not be empty.")
    store = _store()
    try:
        record, secret = store.create_key(name, org, scopes or None)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        store.dispose()
    click.echo(
        f"Created API key {record.name!r} (prefix {record.prefix}) for organisation {org!r}"
        f" with {', '.join(record.scopes)}."
    )
    click.echo("Store it now: it cannot be shown again.")
    click.echo(secret)


@keys.command("list")
def keys_list() -> None:
    """List keys (never the secrets)."""
    for key in _store().list_keys():
        state = "revoked" if key.revoked_at else "active"
        used = key.last_used_at.isoformat() if key.last_used_at else "never"
        scopes = ",".join(key.scopes)
        click.echo(
            f"{key.id}\t{key.prefix}\t{key.organisation}\t{key.name}\t{state}\t{scopes}"
            f"\tlast used {used}"
        )


@keys.command("revoke")
@click.argument("key_id_or_prefix")
def keys_revoke(key_id_or_prefix: str) -> None:
    """Revoke a key by id or prefix; it stops working at once."""
    if not _store().revoke_key(key_id_or_prefix):
        raise click.ClickException(f"No active key {key_id_or_prefix!r}.")
    click.echo(f"Revoked {key_id_or_prefix}.")


def _store() -> Store:
    store = Store(database_url_from_env())
    store.upgrade()
    return store


# --------------------------------------------------------------------------- protocols


@main.group()
def protocols() -> None:
    """Inspect and validate protocol files."""


@protocols.command("check")
@click.argument(
    "directories", nargs=-1, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
def protocols_check(directories: tuple[Path, ...]) -> None:
    """Validate the built-in protocols plus any DIRECTORIES; exit 1 on any error."""
    try:
        catalog = load_catalog(
            [*protocol_dirs(os.environ.get("PLANNER_PROTOCOLS_DIRS")), *directories]
        )
    except CatalogErrors as exc:
        for problem in exc.problems:
            click.echo(f"INVALID {problem.detail}", err=True)
        sys.exit(1)
    except InvalidProtocol as exc:
        click.echo(f"INVALID {exc.detail}", err=True)
        sys.exit(1)
    click.echo(f"Built-in protocols: {builtin_protocols_dir()}")
    for protocol in catalog:
        phases = ", ".join(p.key for p in protocol.phases)
        click.echo(f"OK {protocol.id} {protocol.version}: {phases}")


# --------------------------------------------------------------------------- db


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest version."""
    store = _store()
    click.echo(
        f"Database at revision {store.current_revision()}: {_display(database_url_from_env())}"
    )
    store.dispose()  # close the connection cleanly (a server logs a dropped one)


def _display(url: str) -> str:
    """The database URL with any password masked."""
    return make_url(url).render_as_string(hide_password=True)
