"""The `openeo-aggregator` command: serve, demo, backends, users, credits. Imports nothing of the processing engine."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aggregator.settings import ENV_PREFIX, FederationConfigError, load_settings, settings_help
from backend.accounting.credits_cli import add_credits_group, find_user

HELP = f"""openEO federation aggregator: one openEO API over several backends.

\b
Every setting can also come from an environment variable or from a YAML config file
(--config FILE or {ENV_PREFIX}CONFIG); precedence: flags > environment > config file > defaults.
Lists and mappings (backends, OIDC providers, plans) are given as JSON in the environment.
\b
{settings_help()}
"""


@click.group(help=HELP, context_settings={"max_content_width": 120})
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file with settings (keys as the setting names above, lower case), e.g. `backends:`.")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    ctx.obj = {"config_file": config_file}


def _settings(ctx: click.Context, **overrides):
    try:
        return load_settings(ctx.obj["config_file"], **overrides)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise click.ClickException(f"invalid settings: {exc}") from None


data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                               help=f"Data directory (default: {ENV_PREFIX}DATA_DIR or "
                                    "~/.local/share/openeo-aggregator).")


@main.command()
@click.option("--host", help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, help="Port (default 8090).")
@data_dir_option
@click.option("--workers", type=int, help="Worker processes (default 2).")
@click.option("--dev", is_flag=True, help="Flask's single-process development server instead of gunicorn.")
@click.pass_context
def serve(ctx, host, port, data_dir, workers, dev) -> None:
    """Serve the federation's openEO API (at least two backends must be configured)."""
    settings = _settings(ctx, host=host, port=port, data_dir=data_dir, workers=workers)
    from aggregator.server import run_server

    try:
        run_server(settings, development=dev)
    except FederationConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option("--port", type=int, default=8090, show_default=True, help="Port of the aggregator.")
@click.option("--user", default="demo", show_default=True, help="Basic-auth user created everywhere.")
@click.option("--password", default="demo", show_default=True, help="That user's password.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the servers keep their data and logs (default: a temporary directory, removed at the "
                   "end; a given one is kept and reused).")
@click.pass_context
def demo(ctx, port, user, password, data_dir) -> None:
    """A whole federation on this machine: two `openeo-backend serve` instances on free ports (A: Sentinel-2 and
    DEM demo collections, B: Sentinel-1 and DEM), each with its job runner, and the aggregator in front on
    127.0.0.1:PORT; the user exists everywhere. Prints the URL and credentials; Ctrl-C or SIGTERM stops
    everything. Needs the processing engine (the `backend` extra)."""
    from aggregator.demo import DemoFailed, DemoOptions, run_demo
    from backend.engine_check import engine_missing_message

    if ctx.obj["config_file"] is not None:
        raise click.ClickException("`demo` configures its servers itself: drop --config")
    missing = engine_missing_message("openeo-aggregator demo")
    if missing:
        raise click.ClickException(missing)
    if not user or not password:
        raise click.ClickException("--user and --password must not be empty")
    try:
        code = run_demo(DemoOptions(port=port, user=user, password=password, data_dir=data_dir),
                        say=lambda text: click.echo(text))
    except DemoFailed as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


@main.group()
def backends() -> None:
    """Partner backends: self-check, register, list, remove (on the database the server uses; a running
    server picks changes up within registry_poll_interval seconds)."""


credential_options = [
    click.option("--user", "username", help="A user of the candidate backend, for the checks that need one "
                                            "(the small sync request, signed result URLs)."),
    click.option("--password", help="That user's password (prompted when --user is given without it)."),
    click.option("--token", help="Instead of --user: an access token of the candidate, as sent after 'Bearer ' "
                                 "(e.g. oidc/<provider>/<jwt>)."),
]


def with_credentials(command):
    for option in reversed(credential_options):
        command = option(command)
    return command


def _check_credentials(username, password, token):
    from aggregator.onboarding.candidate import CheckCredentials

    if token:
        return CheckCredentials(token=token)
    if username:
        if password is None:
            password = click.prompt(f"password of {username} at the candidate", hide_input=True)
        return CheckCredentials(username=username, password=password)
    return None


def _registry(ctx, data_dir):
    from aggregator.federation.backends import BackendRegistry
    from aggregator.storage.backend_store import DbBackendStore

    settings, db = _database(ctx, data_dir)
    return settings, BackendRegistry(settings.backends, store=DbBackendStore(db))


@backends.command("add")
@click.argument("backend_id", metavar="ID")
@click.argument("url")
@click.option("--title", help="Name shown to users (default: the id).")
@click.option("--description", help="A sentence about the backend for users.")
@click.option("--weight", type=float, help="Routing preference among backends that can run a graph (default 1).")
@click.option("--experimental", is_flag=True, help="Mark it experimental.")
@click.option("--force", is_flag=True, help="Register even when a check fails.")
@with_credentials
@data_dir_option
@click.pass_context
def backends_add(ctx, backend_id, url, title, description, weight, experimental, force, username, password,
                 token, data_dir) -> None:
    """Self-check the backend at URL (its versioned API root) and register it as ID; refused when a check
    fails (unless --force)."""
    from pydantic import ValidationError

    from aggregator.federation.backends import BackendConfig, RegistryError
    from aggregator.onboarding import registration

    fields = {"title": title, "description": description, "weight": weight, "experimental": experimental or None}
    try:
        backend = BackendConfig(id=backend_id, url=url, **{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise click.ClickException("invalid backend: " + "; ".join(e["msg"] for e in exc.errors())) from None
    settings, registry = _registry(ctx, data_dir)
    try:
        report = registration.register(registry, backend, credentials=_check_credentials(username, password, token),
                                       options=registration.options_for(settings), force=force)
    except registration.SelfCheckFailed as exc:
        click.echo(exc.report.render())
        raise click.ClickException(f"backend '{backend_id}' not registered: a check failed (--force registers "
                                   "it anyway)") from None
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(report.render())
    click.echo(f"registered backend '{backend_id}' ({backend.display_title}) at {backend.url}")


@backends.command("check")
@click.argument("target", metavar="ID-OR-URL")
@with_credentials
@data_dir_option
@click.pass_context
def backends_check(ctx, target, username, password, token, data_dir) -> None:
    """Run the onboarding self-check against a member (ID) or a candidate (URL); exit 1 when a check fails."""
    from aggregator.onboarding import registration

    settings, registry = _registry(ctx, data_dir)
    config = registry.get(target)
    url, backend_id = (config.url, config.id) if config else (target, "candidate")
    if config is None and not target.startswith(("http://", "https://")):
        raise click.ClickException(f"'{target}' is neither a backend id ({', '.join(registry.ids())}) nor an "
                                   "http(s) URL")
    report = registration.check_backend(url, backend_id, credentials=_check_credentials(username, password, token),
                                        options=registration.options_for(settings))
    click.echo(report.render())
    if not report.passed:
        ctx.exit(1)


@backends.command("list")
@data_dir_option
@click.pass_context
def backends_list(ctx, data_dir) -> None:
    """Every backend: id, origin (config, registered, departed), url, title."""
    _, registry = _registry(ctx, data_dir)
    for config in registry.snapshot():
        click.echo(f"{config.id}\t{registry.origin(config.id)}\t{config.url}\t{config.display_title}")
    for departure in registry.departures():
        removed = departure.removed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"{departure.backend_id}\tdeparted {removed}\t{departure.url}\t{departure.title}")


@backends.command("remove")
@click.argument("backend_id", metavar="ID")
@data_dir_option
@click.pass_context
def backends_remove(ctx, backend_id, data_dir) -> None:
    """Remove registered backend ID; its jobs then answer that it left the federation."""
    from aggregator.federation.backends import RegistryError
    from aggregator.onboarding import registration

    _, registry = _registry(ctx, data_dir)
    try:
        departure = registration.unregister(registry, backend_id)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"removed backend '{backend_id}'" + (f": {departure.message()}" if departure else ""))


@main.group()
def users() -> None:
    """Manage the federation's basic-auth users (the same name and password must work on the backends)."""


@users.command("add")
@click.argument("name")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="The user's password.")
@data_dir_option
@click.pass_context
def users_add(ctx, name: str, password: str, data_dir) -> None:
    """Add a user NAME with a password."""
    from backend.storage.users import UserExists

    if not password:
        raise click.ClickException("the password must not be empty")
    try:
        user = _user_store(ctx, data_dir).add(name, password)
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
    """Remove user NAME and everything they own at the aggregator (UDPs, credits). An OIDC user's tokens are
    refused from then on (`users restore NAME` lets the identity in again, as a new account)."""
    if not _user_store(ctx, data_dir).remove(name):
        raise click.ClickException(f"no user '{name}'")
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
credits = add_credits_group(main, help="The federation's credits: grants, balances, the per-backend usage report "
                                       "for partners.",
                            balance_help="Show the federation balance of user NAME.", data_dir_option=data_dir_option,
                            open_ledger=lambda ctx, data_dir: _accounting(ctx, data_dir).ledger,
                            open_users=lambda ctx, data_dir: _user_store(ctx, data_dir))


@credits.command("report")
@click.option("--backend", "backend_id", help="Only this backend.")
@click.option("--user", "name", help="Only this user.")
@click.option("--since", type=click.DateTime(), help="Only charges from this date/time (UTC).")
@click.option("--until", type=click.DateTime(), help="Only charges before this date/time (UTC).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@data_dir_option
@click.pass_context
def credits_report(ctx, backend_id, name, since, until, fmt, data_dir) -> None:
    """Per backend and user: synchronous requests, job runs, credits reported by the backend and charged
    to the user (the partners' usage report)."""
    from datetime import timezone

    from aggregator.accounting import render_usage_report

    user = find_user(_user_store(ctx, data_dir), name) if name else None
    accounting = _accounting(ctx, data_dir)
    utc = lambda moment: moment.replace(tzinfo=timezone.utc) if moment else None  # noqa: E731
    rows = accounting.usage_report(since=utc(since), until=utc(until), backend_id=backend_id,
                                   user_id=user.user_id if user else None)
    click.echo(render_usage_report(rows, fmt), nl=fmt == "json")


def _database(ctx, data_dir):
    from aggregator.storage import open_aggregator_database

    settings = _settings(ctx, data_dir=data_dir)
    return settings, open_aggregator_database(settings)


def _accounting(ctx, data_dir):
    from aggregator.accounting import FederationAccounting

    settings, db = _database(ctx, data_dir)
    return FederationAccounting(db, settings.plans, settings.free_credits)


def _user_store(ctx, data_dir):
    from backend.storage.users import UserStore

    return UserStore(_database(ctx, data_dir)[1])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
