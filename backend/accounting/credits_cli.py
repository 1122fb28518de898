"""The `credits` command group of both CLIs (`openeo-backend`, `openeo-aggregator`): `grant` and `balance`
on a ``Ledger``; each CLI adds its own `report` (the backend's costs per job, the aggregator's usage per
backend), since those read different tables with different filters.

Imports only click at module level: the aggregator's CLI loads this too and must stay free of the
processing engine (and the backend's `credits` commands of numpy and pandas)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import click

if TYPE_CHECKING:
    from pathlib import Path

    from backend.accounting.ledger import Ledger
    from backend.storage.models import User
    from backend.storage.users import UserStore

# (ctx, --data-dir) -> the opened store: called inside the command, so `--help` opens no database
OpenLedger = Callable[[click.Context, "Path | None"], "Ledger"]
OpenUsers = Callable[[click.Context, "Path | None"], "UserStore"]


def find_user(users: UserStore, name: str) -> User:
    """The user called ``name`` in a ``UserStore``, or the CLI's error."""
    user = next((u for u in users.list() if u.name == name), None)
    if user is None:
        raise click.ClickException(f"no user '{name}'")
    return user


def add_credits_group(parent: click.Group, *, help: str, balance_help: str, data_dir_option,
                      open_ledger: OpenLedger, open_users: OpenUsers) -> click.Group:
    """Add `credits` with `grant` and `balance` to ``parent``; returns the group for the CLI's `report`."""

    @parent.group("credits", help=help)
    def credits() -> None:
        pass

    @credits.command("grant", context_settings={"ignore_unknown_options": True})  # AMOUNT may be negative
    @click.argument("name")
    @click.argument("amount", type=float)
    @click.option("--note", help="Why (kept in the ledger).")
    @data_dir_option
    @click.pass_context
    def grant(ctx, name: str, amount: float, note, data_dir) -> None:
        """Give user NAME AMOUNT credits (negative: correct the balance, never below zero)."""
        user = find_user(open_users(ctx, data_dir), name)
        balance = open_ledger(ctx, data_dir).grant(user.user_id, amount, note=note or "granted by the operator")
        click.echo(f"{name}: {balance:g} credits")

    @credits.command("balance", help=balance_help)
    @click.argument("name")
    @data_dir_option
    @click.pass_context
    def balance(ctx, name: str, data_dir) -> None:
        user = find_user(open_users(ctx, data_dir), name)
        click.echo(f"{open_ledger(ctx, data_dir).balance(user.user_id):g}")

    return credits
