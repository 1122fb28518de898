"""The same storage code on a real PostgreSQL server (throw-away cluster started by the test setup)."""

from __future__ import annotations

import threading

import pytest
import requests
import sqlalchemy as sa

from backend.app import create_app
from backend.settings import load_settings
from backend.storage.db import Database
from backend.storage.schema import head_revision
from backend.storage.udps import UdpStore
from backend.storage.users import IdentityRemoved, UserExists, UserStore
from tests.conftest import LiveServer
from tests.support.postgres import postgres_module_url, postgres_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def db(postgres_module_url):  # noqa: F811
    database = Database(postgres_module_url)
    database.upgrade()
    database.upgrade()  # idempotent
    yield database
    database.dispose()


def test_schema_is_migrated(db):
    inspector = sa.inspect(db.engine)
    assert {"users", "user_defined_processes", "alembic_version"} <= set(inspector.get_table_names())
    with db.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == head_revision()


def test_users_and_udps(db):
    users, udps = UserStore(db), UdpStore(db)
    alice = users.add("pg-alice", "pw")
    with pytest.raises(UserExists):
        users.add("pg-alice", "other")
    assert users.check_password("pg-alice", "pw").user_id == alice.user_id
    assert users.check_password("pg-alice", "nope") is None
    udps.put(alice.user_id, "p1", {"id": "p1", "process_graph": {"a": {"process_id": "add"}}})
    udps.put(alice.user_id, "p1", {"id": "p1", "summary": "v2", "process_graph": {}})
    assert udps.list(alice.user_id) == [{"id": "p1", "summary": "v2", "process_graph": {}}]
    assert users.remove("pg-alice")
    assert udps.list(alice.user_id) == []  # cascaded


def test_concurrent_first_sight_creates_one_oidc_user(db):
    users, results = UserStore(db), []

    def login():
        results.append(users.get_or_create_oidc("egi", "subject-42", "ada").user_id)

    threads = [threading.Thread(target=login) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 8
    assert [u.name for u in users.list() if u.oidc_subject == "subject-42"] == ["egi:ada"]


def test_a_removed_oidc_identity_stays_removed_until_restored(db):
    users = UserStore(db)
    first = users.get_or_create_oidc("egi", "subject-removed", "rem")
    assert users.remove("egi:rem") and not users.remove("egi:rem")
    for _ in range(2):
        with pytest.raises(IdentityRemoved):
            users.get_or_create_oidc("egi", "subject-removed", "rem")
    assert users.get_or_create_oidc("egi", "another-subject", "rem2").name == "egi:rem2"  # others unaffected
    assert users.restore("egi:rem") and not users.restore("egi:rem")
    assert users.get_or_create_oidc("egi", "subject-removed", "rem").user_id != first.user_id


def test_api_on_postgres(postgres_url, tmp_path):  # noqa: F811
    from tests.support.postgres import create_database, unique_database_name

    url = create_database(postgres_url, unique_database_name("api"))
    settings = load_settings(data_dir=tmp_path, database_url=url, demo_catalog=False)
    server = LiveServer(create_app(settings))
    try:
        headers = server.auth_headers()
        udp = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
        assert requests.put(f"{server.url}/process_graphs/pg_udp", json=udp, headers=headers).status_code == 200
        stored = requests.get(f"{server.url}/process_graphs/pg_udp", headers=headers).json()
        assert stored["process_graph"]["a"]["arguments"] == {"x": 1, "y": 2}
        assert not (tmp_path / "backend.db").exists()  # nothing went to SQLite
        assert requests.get(f"{server.root}/health").json()["database"] == "ok"
    finally:
        server.stop()
        server.services.db.dispose()
