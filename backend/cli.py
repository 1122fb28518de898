"""The `openeo-backend` command: serve, worker, users, credits."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from backend.accounting.credits_cli import add_credits_group, find_user
from backend.settings import ENV_PREFIX, load_settings, settings_help

HELP = f"""openEO backend: API 1.2 on STAC, xarray and Dask.

\b
Every setting can also come from an environment variable or from a YAML config file
(--config FILE or {ENV_PREFIX}CONFIG); precedence: flags > environment > config file > defaults.
Lists and mappings (OIDC providers, STAC sources) are given as JSON in the environment.
\b
{settings_help()}
"""


@click.group(help=HELP, context_settings={"max_content_width": 120})
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file with settings (keys as the setting names above, lower case).")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    ctx.obj = {"config_file": config_file}


def _settings(ctx: click.Context, **overrides):
    try:
        return load_settings(ctx.obj["config_file"], **overrides)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise click.ClickException(f"invalid settings: {exc}") from None


def _require_engine(command: str) -> None:
    from backend.engine_check import engine_missing_message

    message = engine_missing_message(command)
    if message:
        raise click.ClickException(message)


data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                               help=f"Data directory (default: {ENV_PREFIX}DATA_DIR or ~/.local/share/openeo-backend).")


@main.command()
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port (default 8080).")
@data_dir_option
@click.option("--workers", type=int, help="Worker processes (default 2).")
@click.option("--dev", is_flag=True, help="Flask's single-process development server instead of gunicorn.")
@click.option("--dask-scheduler", help="Run batch jobs on this Dask scheduler (default: a LocalCluster).")
@click.option("--no-job-runner", "no_job_runner", is_flag=True, help="Do not start a job runner (run `worker` instead).")
@click.pass_context
def serve(ctx, host, port, data_dir, workers, dev, dask_scheduler, no_job_runner) -> None:
    """Start the API server and a batch-job runner (generates the demo catalog on first start)."""
    settings = _settings(ctx, host=host, port=port, data_dir=data_dir, workers=workers, dask_scheduler=dask_scheduler,
                         job_runner=False if no_job_runner else None)
    _require_engine("openeo-backend serve")
    from backend.server import run_server

    run_server(settings, development=dev)


@main.command()
@data_dir_option
@click.option("--dask-scheduler", help="Address of an existing Dask scheduler (default: start a LocalCluster).")
@click.pass_context
def worker(ctx, data_dir, dask_scheduler) -> None:
    """Run a batch-job runner: claims queued jobs from the database, runs them on Dask (until SIGTERM)."""
    settings = _settings(ctx, data_dir=data_dir, dask_scheduler=dask_scheduler)
    _require_engine("openeo-backend worker")
    from backend.jobs.process import run_runner

    run_runner(settings)


@main.group()
def users() -> None:
    """Manage basic-auth users."""


@users.command("add")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="The user's password.")
@data_dir_option
@click.pass_context
def users_add(ctx, name: str, password: str, data_dir) -> None:
    """Add a user NAME with a password."""
    from backend.storage.users import UserExists

    store = _user_store(ctx, data_dir)
    if not password:
        raise click.ClickException("the password must not be empty")
    try:
        user = store.add(name, password)
    except UserExists:
        raise click.ClickException(f"user '{name}' exists already") from None
    click.echo(f"added user {name} (user_id {user.user_id})")


@users.command("list")
@data_dir_option
@click.pass_context
def users_list(ctx, data_dir) -> None:
    """List users (name, user_id, kind)."""
    for user in _user_store(ctx, data_dir).list():
        kind = f"oidc:{user.oidc_provider}" if user.oidc_provider else "basic"
        click.echo(f"{user.name}\t{user.user_id}\t{kind}")


@users.command("remove")
@click.argument("name")
@data_dir_option
@click.pass_context
def users_remove(ctx, name: str, data_dir) -> None:
    """Remove user NAME and everything they own (their uploaded files too). An OIDC user's tokens are refused
    from then on (`users restore NAME` lets the identity in again, as a new account)."""
    from backend.files import open_workspaces

    settings = _settings(ctx, data_dir=data_dir)
    store = _user_store(ctx, data_dir)
    user = next((user for user in store.list() if user.name == name), None)
    if user is None or not store.remove(name):
        raise click.ClickException(f"no user '{name}'")
    open_workspaces(settings).remove_user(user.user_id)
    click.echo(f"removed user {name}")


@users.command("restore")
@click.argument("name")
@data_dir_option
@click.pass_context
def users_restore(ctx, name: str, data_dir) -> None:
    """Let the OIDC identity of removed user NAME log in again (as a new, empty account)."""
    if not _user_store(ctx, data_dir).restore(name):
        raise click.ClickException(f"no removed OIDC user '{name}'")
    click.echo(f"restored {name}: its identity may log in again")


# lambdas: the openers are defined further down
credits = add_credits_group(main, help="Credit accounts: grants, balances, cost reports.",
                            balance_help="Show the balance of user NAME.", data_dir_option=data_dir_option,
                            open_ledger=lambda ctx, data_dir: _ledger(ctx, data_dir),
                            open_users=lambda ctx, data_dir: _user_store(ctx, data_dir))


@credits.command("report")
@click.option("--user", "name", help="Only this user.")
@click.option("--since", type=click.DateTime(), help="Only entries from this date/time (UTC).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
@click.pass_context
def credits_report(ctx, name, since, fmt, data_dir) -> None:
    """Costs per user and per job (or synchronous request)."""
    from datetime import timezone

    from backend.accounting.report import COLUMNS, cost_report, render_rows

    store = _user_store(ctx, data_dir)
    user = find_user(store, name) if name else None
    ledger = _ledger(ctx, data_dir)
    names = {u.user_id: u.name for u in store.list()}
    rows = cost_report(ledger, names, user.user_id if user else None,
                       since.replace(tzinfo=timezone.utc) if since else None)
    click.echo(render_rows(rows, COLUMNS, fmt), nl=False)


def _ledger(ctx, data_dir):
    from backend.accounting.ledger import Ledger
    from backend.storage.schema import open_database

    settings = _settings(ctx, data_dir=data_dir)
    return Ledger(open_database(settings), settings.free_credits, settings.monthly_free_credits)


def _user_store(ctx, data_dir):
    from backend.storage.schema import open_database
    from backend.storage.users import UserStore

    return UserStore(open_database(_settings(ctx, data_dir=data_dir)))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
