"""The anchors: openeo-driver's dummy backend and VITO's openeo-aggregator, as real gunicorn processes.

Both run from their own venv (``.venv-anchors``, made by ``scripts/ensure-anchors.sh``; ``make test`` runs it),
never from the project's: their pins conflict with ours (tests/anchors/README.md says which, and what the
dummy backend offers).

    with start_dummy_backend(tmp_path, users={"alice": "pw"}) as dummy:   # dummy.url = ".../openeo/1.2/"
        ...
    with start_vito_aggregator(tmp_path, {"b1": ours.url, "b2": dummy.url}) as vito:
        ...
    server.pause(); server.resume()   # SIGSTOP/SIGCONT: the port still accepts, nothing answers (a hang)
    server.stop(); server.start()     # same port: refused while stopped

Their configuration is a Python file named by ``OPENEO_BACKEND_CONFIG`` holding ``config = ...``: an
``OpenEoBackendConfig`` for the dummy backend, an ``AggregatorBackendConfig`` for the aggregator (in-process
dict memoizer, no ZooKeeper). Both are written here from plain values (``repr``), so nothing of a test's
process leaks into them. Fixtures: ``anchors_bin`` (skips with the reason when the venv is missing) and
``dummy_backend`` (module-scoped, users ``alice``/``alice-pw`` and ``bob``/``bob-pw``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import requests

from tests.support.processes import LOCALHOST, file_tail, free_port, http_ok, stop_process, wait_until_ready

REPO_ROOT = Path(__file__).resolve().parents[2]
API = "/openeo/1.2/"
ENSURE_SCRIPT = "scripts/ensure-anchors.sh"
DUMMY_APP = "openeo_driver.dummy.local_app:create_app()"
# auto_logging_setup=False: VITO's default is JSON logs at DEBUG for every request, which would put its
# logging, not its aggregation, into the benchmarks; warnings and errors still reach the log file.
AGGREGATOR_APP = "openeo_aggregator.app:create_app(auto_logging_setup=False)"
DEFAULT_USERS = {"alice": "alice-pw", "bob": "bob-pw"}


class AnchorsMissing(RuntimeError):
    pass


def anchors_venv() -> Path:
    return Path(os.environ.get("OPENEO_ANCHORS_VENV") or REPO_ROOT / ".venv-anchors")


def find_anchors_bin() -> Path:
    """The anchors venv's bin directory; AnchorsMissing (saying what to run) when it is not installed."""
    venv = anchors_venv()
    if not (venv / ".installed").is_file() or not (venv / "bin" / "gunicorn").exists():
        raise AnchorsMissing(f"the anchors venv {venv} is not installed: run `bash {ENSURE_SCRIPT}` "
                             "(`make test` does) to install openeo-driver and openeo-aggregator into it")
    return venv / "bin"


# -------------------------------------------------------------------------------------- config files


def dummy_backend_config(*, backend_id: str, title: str, users: dict[str, str],
                         oidc_issuer: str | None = None, oidc_provider_id: str = "testoidc") -> str:
    """Python source of an ``OpenEoBackendConfig`` for the dummy backend.

    Basic auth accepts exactly ``users`` (name -> password; the dummy's own config accepts any user with a
    password derived from the name). With ``oidc_issuer`` it lists that provider; the dummy resolves OIDC
    tokens by calling the provider's userinfo endpoint (no signature check of its own).
    """
    providers = []
    if oidc_issuer:
        providers.append(f"OidcProvider(id={oidc_provider_id!r}, issuer={oidc_issuer!r}, "
                         f"scopes=['openid'], title='Test OIDC')")
    return "\n".join([
        "from openeo_driver.config import OpenEoBackendConfig",
        "from openeo_driver.users.oidc import OidcProvider",
        f"_USERS = {dict(users)!r}",
        "config = OpenEoBackendConfig(",
        f"    id={backend_id!r},",
        f"    capabilities_title={title!r},",
        "    capabilities_description='openeo-driver dummy backend, started by the tests',",
        "    enable_basic_auth=True,",
        "    valid_basic_auth=lambda name, password: _USERS.get(name) == password,",
        f"    oidc_providers=[{', '.join(providers)}],",
        ")",
        "",
    ])


def vito_aggregator_config(backends: dict[str, str], *, memoizer: str = "dict", title: str = "VITO aggregator",
                           oidc_issuer: str | None = None, oidc_provider_id: str = "testoidc",
                           users: dict[str, str] | None = None,
                           connections_cache_ttl: float | None = None) -> str:
    """Python source of an ``AggregatorBackendConfig``.

    ``memoizer``: "dict" (its in-process cache, the default) or "null" (no metadata cache at all).
    Its backend ids must be lowercase letters and digits only. Auth: it resolves the caller itself
    (``users`` enables basic auth; OIDC through the provider's userinfo), then forwards the caller's
    bearer token unchanged to every backend (``basic//...``) or with the backend's provider id for the same
    issuer (``oidc/<id>/...``): the backends must accept that token themselves.
    """
    bad = [bid for bid in backends if not re.fullmatch(r"[a-z0-9]+", bid)]
    if bad:
        raise ValueError(f"VITO's aggregator accepts backend ids of lowercase letters and digits only, not {bad}")
    lines = [
        "from openeo_aggregator.config import AggregatorBackendConfig",
        "from openeo_driver.users.oidc import OidcProvider",
        f"_USERS = {dict(users or {})!r}",
        "config = AggregatorBackendConfig(",
        "    id='vito-aggregator',",
        f"    capabilities_title={title!r},",
        "    capabilities_description='VITO openeo-aggregator, started by the tests',",
        f"    aggregator_backends={dict(backends)!r},",
        f"    memoizer={{'type': {memoizer!r}}},",
        f"    enable_basic_auth={bool(users)!r},",
        "    valid_basic_auth=lambda name, password: _USERS.get(name) == password,",
    ]
    if oidc_issuer:
        lines.append(f"    oidc_providers=[OidcProvider(id={oidc_provider_id!r}, issuer={oidc_issuer!r}, "
                     f"scopes=['openid'], title='Test OIDC')],")
    if connections_cache_ttl is not None:
        lines.append(f"    connections_cache_ttl={float(connections_cache_ttl)!r},")
    return "\n".join(lines + [")", ""])


# ------------------------------------------------------------------------------------------ processes


class AnchorServer:
    """A gunicorn master from the anchors venv on 127.0.0.1, in its own process group."""

    def __init__(self, name: str, app: str, config_path: Path, work_dir: Path, *, port: int | None = None,
                 workers: int = 1, threads: int = 4, start_timeout: float = 60.0):
        self.name, self.app, self.config_path, self.work_dir = name, app, config_path, work_dir
        self.port = port or free_port()
        self.workers, self.threads, self.start_timeout = workers, threads, start_timeout
        self.log_path = work_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.paused = False

    @property
    def root(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def url(self) -> str:
        return self.root + API

    def argv(self) -> list[str]:
        return [str(find_anchors_bin() / "gunicorn"), "--bind", f"{LOCALHOST}:{self.port}",
                "--workers", str(self.workers), "--threads", str(self.threads), "--worker-class", "gthread",
                "--timeout", "120", "--graceful-timeout", "3", "--log-level", "warning", self.app]

    def environment(self) -> dict[str, str]:
        # Not the project's PYTHONPATH or venv: the anchors import their own Flask, openeo, ...
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["OPENEO_BACKEND_CONFIG"] = str(self.config_path)
        return env

    def start(self) -> "AnchorServer":
        argv = self.argv()  # raises AnchorsMissing first
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, env=self.environment(), cwd=self.work_dir, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.paused = False
        session = requests.Session()
        try:
            ready = wait_until_ready(self.proc, lambda: http_ok(self.url, timeout=5, session=session),
                                     timeout=self.start_timeout, interval=0.2)
        finally:
            session.close()
        if not ready:
            code = self.proc.returncode
            self.stop()
            state = "timed out" if code is None else f"exited with code {code}"
            raise RuntimeError(f"{self.name} on port {self.port} {state} before answering {self.url}:\n"
                               f"{file_tail(self.log_path, 30)}")
        return self

    def pause(self) -> None:
        """SIGSTOP master and workers: connections are still accepted (the kernel's backlog), never answered."""
        os.killpg(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.paused:
            self.resume()
        stop_process(self.proc, grace=10, name=self.name)
        try:  # workers that outlived their master (e.g. after a SIGKILL of the master)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc = None

    def log_tail(self, n: int = 30) -> str:
        return file_tail(self.log_path, n)

    def __enter__(self) -> "AnchorServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_dummy_backend(work_dir: Path, *, name: str = "dummy", users: dict[str, str] | None = None,
                        oidc_issuer: str | None = None, title: str = "openeo-driver dummy",
                        port: int | None = None, threads: int = 4) -> AnchorServer:
    """openeo-driver's dummy backend under gunicorn, one worker (its jobs live in that process's memory)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / f"{name}-config.py"
    config_path.write_text(dummy_backend_config(backend_id=name, title=title, users=users or DEFAULT_USERS,
                                                oidc_issuer=oidc_issuer))
    return AnchorServer(name, DUMMY_APP, config_path, work_dir, port=port, workers=1, threads=threads).start()


def start_vito_aggregator(work_dir: Path, backends: dict[str, str], *, name: str = "vito-aggregator",
                          memoizer: str = "dict", oidc_issuer: str | None = None,
                          users: dict[str, str] | None = None, connections_cache_ttl: float | None = None,
                          port: int | None = None, workers: int = 1, threads: int = 4) -> AnchorServer:
    """VITO's openeo-aggregator under gunicorn in front of ``backends`` (id -> openEO API URL)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / f"{name}-config.py"
    config_path.write_text(vito_aggregator_config(backends, memoizer=memoizer, oidc_issuer=oidc_issuer,
                                                  users=users, connections_cache_ttl=connections_cache_ttl))
    return AnchorServer(name, AGGREGATOR_APP, config_path, work_dir, port=port, workers=workers,
                        threads=threads).start()


try:
    import pytest
except ImportError:  # pragma: no cover - the benchmarks import this module without pytest
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def anchors_bin() -> Path:
        try:
            return find_anchors_bin()
        except AnchorsMissing as missing:
            pytest.skip(str(missing))

    @pytest.fixture(scope="module")
    def dummy_backend(anchors_bin, tmp_path_factory):
        with start_dummy_backend(tmp_path_factory.mktemp("dummy-backend")) as server:
            yield server
