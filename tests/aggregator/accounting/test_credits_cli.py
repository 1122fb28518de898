"""`openeo-aggregator credits`: grant, balance and the partners' usage report, on the database the server
uses."""

from __future__ import annotations

import json
from dataclasses import dataclass

from click.testing import CliRunner

from aggregator.accounting import FederationAccounting
from aggregator.cli import main
from aggregator.settings import load_settings
from aggregator.storage import open_aggregator_database
from backend.storage.users import UserStore


@dataclass(frozen=True)
class Caller:
    user_id: str
    name: str


def test_grant_balance_and_usage_report(tmp_path):
    data_dir = ["--data-dir", str(tmp_path)]

    def run(*args: str):
        return CliRunner().invoke(main, [*args, *data_dir])

    assert run("users", "add", "ann", "--password", "pw").exit_code == 0
    assert run("credits", "balance", "ann").output == "1000\n"  # the free credits
    assert run("credits", "grant", "ann", "5", "--note", "prize").output == "ann: 1005 credits\n"
    assert run("credits", "grant", "ann", "-5000").output == "ann: 0 credits\n"  # never below zero
    missing = run("credits", "balance", "nobody")
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output

    settings = load_settings(None, data_dir=tmp_path)
    db = open_aggregator_database(settings)
    user = next(u for u in UserStore(db).list() if u.name == "ann")
    run("credits", "grant", "ann", "10")
    FederationAccounting(db, settings.plans, settings.free_credits).charge_result(
        Caller(user.user_id, "ann"), "b1", "r1", "3")

    csv_lines = run("credits", "report").output.splitlines()
    assert csv_lines[0] == "backend,user,user_id,requests,jobs,reported,credits,first,last"
    assert csv_lines[1].startswith(f"b1,ann,{user.user_id},1,0,3.0,")
    rows = json.loads(run("credits", "report", "--user", "ann", "--backend", "b1", "--format", "json").output)
    assert [(row["backend"], row["requests"], row["reported"]) for row in rows] == [("b1", 1, 3.0)]
    assert json.loads(run("credits", "report", "--backend", "other", "--format", "json").output) == []

