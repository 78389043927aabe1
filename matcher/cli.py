"""The ``matcher`` command: schema, demo data, keys and the server."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from matcher.db import session_scope
from matcher.extensions import state
from matcher.models import REMINDER_KINDS

if TYPE_CHECKING:
    from matcher.services.hr_import import Table

DEMO_FILE = Path(__file__).parent / "demo" / "alliance.json"


def _create_app() -> Flask:
    from matcher.app import create_app

    return create_app()


main = FlaskGroup(create_app=_create_app, help="Craftsman mentorship matcher.")


def register_cli(app: Flask) -> None:
    """Attach the service's commands to ``app.cli`` (and so to ``matcher``)."""
    app.cli.add_command(db_group)
    app.cli.add_command(demo)
    app.cli.add_command(keys_group)
    app.cli.add_command(serve)
    app.cli.add_command(match)
    app.cli.add_command(import_people)
    app.cli.add_command(scheduler)
    app.cli.add_command(users_group)
    app.cli.add_command(jobs_group)
    app.cli.add_command(reminders_group)


@click.group("db", help="Database schema.")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema (Alembic)."""
    from matcher.migrations import schema_status, upgrade

    engine = state().engine
    upgrade(engine, revision)
    click.echo(f"database schema at {schema_status(engine).current}", err=True)


@db_group.command("revision")
@click.option("-m", "--message", required=True)
@with_appcontext
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models (read it before committing it)."""
    from alembic import command

    from matcher.migrations import alembic_config

    command.revision(alembic_config(state().engine), message=message, autogenerate=True)


@click.command("demo")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=DEMO_FILE,
    show_default=True,
)
@with_appcontext
def demo(path: Path) -> None:
    """Load the demo alliance, if the database holds no alliance yet."""
    import marshmallow as ma

    from matcher.api.schemas import ApprenticeBulkItemSchema, CraftsmanBulkItemSchema
    from matcher.services.demo import load_demo

    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        for unit in data["units"]:
            unit["craftsmen"] = CraftsmanBulkItemSchema(many=True).load(unit["craftsmen"])
            unit["apprentices"] = ApprenticeBulkItemSchema(many=True).load(unit["apprentices"])
    except ma.ValidationError as exc:
        raise click.ClickException(f"invalid demo file: {exc.messages}") from exc
    with session_scope(state().session_factory) as session:
        loaded = load_demo(session, data=data)
    if loaded is None:
        click.echo("database already holds an alliance; demo not loaded", err=True)
    else:
        click.echo(
            f"loaded demo alliance {loaded.alliance_code}: {loaded.units} units, "
            f"{loaded.skills} skills, {loaded.craftsmen} craftsmen, "
            f"{loaded.apprentices} apprentices, {loaded.mentorships} mentorships",
            err=True,
        )


@click.group("keys", help="API keys.")
def keys_group() -> None:
    """API key commands."""


@keys_group.command("create")
@click.option("--role", type=click.Choice(["admin", "coordinator", "hr"]), required=True)
@click.option("--alliance", "alliance_code", help="Alliance code (coordinator and hr keys).")
@click.option("--unit", "unit_code", help="Unit code within the alliance (hr keys).")
@click.option("--name", help="What the key is for, e.g. the HR system's name.")
@with_appcontext
def keys_create(
    role: str, alliance_code: str | None, unit_code: str | None, name: str | None
) -> None:
    """Create a key and print it alone on stdout; only its hash is stored."""
    from matcher.errors import DomainError
    from matcher.services.api_keys import create_key_by_codes

    try:
        with session_scope(state().session_factory) as session:
            created = create_key_by_codes(
                session, role=role, alliance_code=alliance_code, unit_code=unit_code, name=name
            )
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(created.secret)


@keys_group.command("list")
@with_appcontext
def keys_list() -> None:
    """Every key: id, prefix, role, scope, name, revoked or not (never the key itself)."""
    from matcher.services.api_keys import list_keys

    with session_scope(state().session_factory) as session:
        for key in list_keys(session):
            scope = f"unit {key.unit_id}" if key.unit_id else f"alliance {key.alliance_id or '-'}"
            revoked = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            click.echo(
                f"{key.id:5} {key.prefix}…  {key.role:11} {scope:14} {revoked:18} {key.name or ''}"
            )


@keys_group.command("revoke")
@click.argument("key_id", type=int)
@with_appcontext
def keys_revoke(key_id: int) -> None:
    """Revoke a key by its id (see `matcher keys list`): it is refused (401) from now on; the
    revocation is audited."""
    from matcher.errors import DomainError
    from matcher.services.api_keys import revoke_key

    try:
        with session_scope(state().session_factory) as session:
            key = revoke_key(session, key_id=key_id, actor="cli")
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"key {key_id} ({key.prefix}…) revoked", err=True)


@click.command("serve")
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader.")
def serve(bind: str, workers: int, dev: bool) -> None:
    """Serve the API and pages under gunicorn (or Flask's reloader with --dev)."""
    if dev:
        host, _, port = bind.rpartition(":")
        from matcher.app import create_app

        create_app().run(host=host or "127.0.0.1", port=int(port), debug=True)
        return
    env = dict(os.environ)
    # Metrics from every worker are merged through files in this folder (multiprocess mode);
    # it must be set before any worker imports prometheus_client, hence a fresh process.
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="matcher-metrics-"))
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "python:matcher.gunicorn_conf",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "matcher.wsgi:app",
    ]
    os.execve(sys.executable, argv, env)  # noqa: S606 - our own interpreter, a fixed argv


def _param(value: str) -> tuple[str, object]:
    name, sep, raw = value.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"expected k=v, got '{value}'")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw  # plain words such as objective=coverage


@click.command("match")
@click.option("--alliance", "alliance_code", required=True, help="Alliance code.")
@click.option(
    "--param",
    "raw_params",
    multiple=True,
    metavar="K=V",
    help="A run parameter (matching.md), e.g. min_fit=0.3 or pinned='[[1,2]]'.",
)
@with_appcontext
def match(alliance_code: str, raw_params: tuple[str, ...]) -> None:
    """Run a matching from the command line, showing its progress."""
    import marshmallow as ma

    from matcher.api.schemas import MatchParamsSchema
    from matcher.errors import DomainError
    from matcher.models import RUN_FAILED
    from matcher.services.alliances import alliance_by_code
    from matcher.services.matching import (
        begin_solving,
        create_match_run,
        execute_match_run,
        with_alliance_defaults,
    )

    given = dict(_param(p) for p in raw_params)
    try:
        params = MatchParamsSchema().load(given)
    except ma.ValidationError as exc:
        raise click.ClickException(f"invalid parameters: {exc.messages}") from exc

    def progress(stage: str, fraction: float) -> None:
        click.echo(f"  {fraction:4.0%}  {stage}", err=True)

    try:
        with session_scope(state().session_factory) as session:
            alliance = alliance_by_code(session, alliance_code)
            params = with_alliance_defaults(alliance, params=params, given=given)
            run = create_match_run(session, alliance=alliance, params=params, created_by="cli")
            begin_solving(run)
            click.echo(f"match run {run.id} for {alliance.code}", err=True)
            execute_match_run(session, run=run, progress=progress)
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    if run.status == RUN_FAILED:
        raise click.ClickException(f"match run {run.id} failed: {run.error}")
    stats = run.stats
    click.echo(
        f"run {run.id}: objective {run.objective:.4f}, {stats.get('matched')} matched, "
        f"{stats.get('unmatched')} unmatched, method {stats.get('method')}, "
        f"build {stats.get('build_seconds')} s, solve {stats.get('solve_seconds')} s"
    )


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--unit", "unit_code", required=True, help="Unit code.")
@click.option("--alliance", "alliance_code", help="Alliance code (needed when unit codes repeat).")
@with_appcontext
def import_people(path: Path, unit_code: str, alliance_code: str | None) -> None:
    """Upsert a unit's craftsmen or apprentices from an HR export (.csv/.xlsx), all or nothing."""
    import marshmallow as ma

    from matcher.api.schemas import ApprenticeBulkItemSchema, CraftsmanBulkItemSchema
    from matcher.errors import DomainError
    from matcher.services.alliances import unit_by_codes
    from matcher.services.hr_import import detect_kind, read_table, to_choice, to_record
    from matcher.services.people import KINDS, upsert_people
    from matcher.services.preferences import set_named_preferences

    try:
        table = read_table(path)
        kind = detect_kind(table)
        schema = CraftsmanBulkItemSchema if kind == "craftsmen" else ApprenticeBulkItemSchema
        with session_scope(state().session_factory) as session:
            unit = unit_by_codes(session, code=unit_code, alliance_code=alliance_code)
            records = [
                to_record(
                    row.cells,
                    kind,
                    consent_version=unit.alliance.consent_notice_version,
                    timezone=unit.alliance.timezone,
                )
                for row in table.rows
            ]
            try:
                items = schema(many=True).load(records)
            except ma.ValidationError as exc:
                raise _row_errors(table, exc.messages) from exc
            try:
                outcome = upsert_people(session, kind=KINDS[kind], unit=unit, items=items)
                if kind == "apprentices":  # their choice of craftsmen, once they exist
                    set_named_preferences(
                        session,
                        apprentice_ids=outcome.ids,
                        choices=[to_choice(row.cells) for row in table.rows],
                        actor="cli:import",
                    )
            except DomainError as exc:
                raise _row_errors(table, exc.errors or {}, exc.detail) from exc
    except DomainError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(
        f"{kind} of {unit_code}: {outcome.created} created, {outcome.updated} updated, "
        f"{outcome.unchanged} unchanged"
    )


def _row_errors(
    table: Table, errors: object, detail: str = "invalid rows; nothing was imported"
) -> click.ClickException:
    """Item indexes as the file's line (CSV) or row (sheet) numbers."""
    lines = [detail]
    if isinstance(errors, dict):
        for index, problem in sorted(
            errors.items(), key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else -1
        ):
            where = table.where(int(index)) if str(index).isdigit() else index
            lines.append(f"  {where}: {json.dumps(problem, ensure_ascii=False)}")
    return click.ClickException("\n".join(lines))


@click.command("scheduler")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    envvar="MATCHER_SCHEDULER_METRICS_PORT",
    help="Serve this process's Prometheus metrics (match runs, outbox sends) here; 0: off.",
)
@with_appcontext
def scheduler(metrics_port: int) -> None:
    """Run the scheduled jobs until stopped (SIGTERM or Ctrl-C); never inside web workers."""
    import signal
    import threading

    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)

    from flask import current_app

    from jobs.scheduler import serve_forever

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    matcher_state = state()
    serve_forever(
        engine=matcher_state.engine,
        session_factory=matcher_state.session_factory,
        settings=matcher_state.settings,
        instance_path=Path(current_app.instance_path),
        stop=stop,
    )


@click.group("jobs", help="Scheduled jobs.")
def jobs_group() -> None:
    """Scheduled job commands."""


@jobs_group.command("list")
def jobs_list() -> None:
    """The jobs and their schedules."""
    from jobs import registry

    for job in registry().values():
        schedule = ", ".join(f"{k}={v}" for k, v in job.trigger_args.items())
        click.echo(f"{job.name:12} {job.trigger}({schedule})  {job.description}")


@jobs_group.command("run")
@click.argument("name")
@click.option("--now", "now_text", metavar="ISO-TIME", help="Run as if it were this time.")
@with_appcontext
def jobs_run(name: str, now_text: str | None) -> None:
    """Run one job once, as if it were --now (default: the current time)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from flask import current_app

    from jobs import registry
    from jobs.scheduler import run_job

    jobs = registry()
    if name not in jobs:
        raise click.BadParameter(f"unknown job '{name}'; one of: {', '.join(jobs)}")
    now = None
    if now_text:
        try:
            now = datetime.fromisoformat(now_text)
        except ValueError as exc:
            raise click.BadParameter(f"not an ISO time: {now_text}") from exc
    matcher_state = state()
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=ZoneInfo(matcher_state.settings.timezone))  # the operator's clock
    outcome = run_job(
        jobs[name],
        session_factory=matcher_state.session_factory,
        settings=matcher_state.settings,
        instance_path=Path(current_app.instance_path),
        now=now,
    )
    click.echo(json.dumps(outcome, ensure_ascii=False, default=str))


@click.group("reminders", help="The email outbox.")
def reminders_group() -> None:
    """Outbox commands."""


@reminders_group.command("retry")
@click.option(
    "--status",
    type=click.Choice(["failed"]),
    required=True,
    help="Which emails to send again (failed: once the cause is fixed).",
)
@click.option("--kind", type=click.Choice(REMINDER_KINDS))
@click.option("--mentorship", "mentorship_id", type=click.IntRange(min=1), help="Mentorship id.")
@with_appcontext
def reminders_retry(status: str, kind: str | None, mentorship_id: int | None) -> None:
    """Queue failed emails again (audited); the outbox job sends them on its next run."""
    from matcher.db import utcnow
    from matcher.services.reminders import retry_reminders

    with session_scope(state().session_factory) as session:
        ids = retry_reminders(
            session,
            status=status,
            kind=kind,
            mentorship_id=mentorship_id,
            actor="cli",
            now=utcnow(),
        )
    click.echo(f"{len(ids)} {status} reminders queued again")


@click.group("users", help="Coordinators who sign in to the web pages.")
def users_group() -> None:
    """User commands."""


@users_group.command("create")
@click.option("--email", required=True)
@click.option("--alliance", "alliance_code", required=True, help="Alliance code.")
@click.option("--locale", type=click.Choice(["zh-CN", "en"]), default="zh-CN", show_default=True)
@click.option(
    "--update", is_flag=True, help="If the user exists, set this password and locale instead."
)
@click.option(
    "--password",
    envvar="MATCHER_USER_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when not given (or read from MATCHER_USER_PASSWORD).",
)
@with_appcontext
def users_create(email: str, alliance_code: str, locale: str, update: bool, password: str) -> None:
    """Create a coordinator who signs in with email and password."""
    from matcher.errors import DomainError
    from matcher.services.alliances import alliance_by_code
    from matcher.services.users import create_user

    try:
        with session_scope(state().session_factory) as session:
            alliance = alliance_by_code(session, alliance_code)
            user = create_user(
                session,
                email=email,
                password=password,
                alliance=alliance,
                locale=locale,
                update=update,
            )
            click.echo(f"user {user.email} can sign in to {alliance.code}", err=True)
    except DomainError as exc:
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.errors or {}).items())
        raise click.ClickException(detail or exc.detail) from exc


@users_group.command("sign-out")
@click.option("--email", required=True)
@with_appcontext
def users_sign_out(email: str) -> None:
    """End every session of a coordinator now (a lost laptop, a leaked cookie); audited."""
    from sqlalchemy import select

    from matcher.models import User
    from matcher.services.users import end_user_sessions

    with session_scope(state().session_factory) as session:
        user = session.scalars(
            select(User).where(User.email == email.strip().lower())
        ).one_or_none()
        if user is None:
            raise click.ClickException(f"no user {email}")
        ended = end_user_sessions(session, user=user, actor="cli", reason="operator")
    click.echo(f"user {user.email}: {ended} session(s) ended", err=True)


@users_group.command("unlock")
@click.option("--email", required=True)
@with_appcontext
def users_unlock(email: str) -> None:
    """Forget an account's failed sign-ins so it may try again now; audited."""
    from matcher.services.sign_in import lift_account_lock

    with session_scope(state().session_factory) as session:
        lifted = lift_account_lock(session, email=email, actor="cli")
    click.echo(f"{email}: {'unlocked' if lifted else 'no failed sign-ins held'}", err=True)
