"""Python UDFs through the real openeo client: values against numpy, the sandbox's walls, its errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import openeo
import pytest
import xarray as xr
from openeo.rest import OpenEoApiError

from backend.app import create_app
from backend.demo import DEMO_S2_COLLECTION
from backend.processing.udf import worker
from backend.settings import load_settings
from tests.conftest import LiveServer

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
DATES = ["2022-06-01", "2022-06-20"]
SECRET_ENV = "OPENEO_BACKEND_TEST_SECRET_FOR_UDF"


@pytest.fixture(scope="module")
def udf_server(session_data_dir, demo_catalog_dir):
    os.environ[SECRET_ENV] = "do-not-leak"
    settings = load_settings(data_dir=session_data_dir, udf_memory_mb=256, udf_cpu_seconds=3, udf_timeout=6,
                             udf_spool_mb=64)
    server = LiveServer(create_app(settings))
    yield server
    server.stop()
    os.environ.pop(SECRET_ENV, None)


@pytest.fixture(scope="module")
def connection(udf_server):
    name, password = udf_server.new_user()
    return openeo.connect(udf_server.url).authenticate_basic(name, password)


def _cube(connection):
    return connection.load_collection(DEMO_S2_COLLECTION, spatial_extent=AREA, temporal_extent=DATES,
                                      bands=["B04", "B08"])


def _download(cube, path) -> xr.DataArray:
    cube.download(path, format="netCDF")
    with xr.open_dataset(path) as dataset:
        return dataset[["B04", "B08"]].to_array("bands").load()


def _udf(body: str) -> openeo.UDF:
    return openeo.UDF(textwrap.dedent(body), runtime="Python")


def _udf_error(cube, tmp_path) -> OpenEoApiError:
    with pytest.raises(OpenEoApiError) as caught:
        cube.download(tmp_path / "out.nc", format="netCDF")
    assert caught.value.http_status_code == 400 and caught.value.code == "UdfFailed", caught.value
    return caught.value


def test_udf_runtimes_list_python_and_its_libraries(connection):
    runtimes = connection.list_udf_runtimes()
    python = runtimes["Python"]
    version = python["default"]
    libraries = python["versions"][version]["libraries"]
    assert version == "3.11" and python["type"] == "language"
    assert libraries["numpy"]["version"] == np.__version__ and libraries["openeo"]["version"] == openeo.__version__
    assert {"xarray", "pandas"} <= set(libraries)
    assert "run_udf" in connection.list_process_ids() if hasattr(connection, "list_process_ids") else True


def test_apply_with_udf_matches_numpy(connection, tmp_path):
    reference = _download(_cube(connection), tmp_path / "in.nc")
    udf = _udf("""
        from openeo.udf import XarrayDataCube

        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            array = cube.get_array()
            return XarrayDataCube(array * context["factor"] + 1)
        """)
    udf = openeo.UDF(udf.code, runtime="Python", context={"factor": 2})
    result = _download(_cube(connection).apply(udf), tmp_path / "out.nc")
    assert result.shape == reference.shape and reference.sizes["t"] >= 2
    np.testing.assert_allclose(result.values, reference.values * 2 + 1, rtol=1e-6)


def test_reduce_dimension_t_with_udf_matches_numpy(connection, tmp_path):
    reference = _download(_cube(connection), tmp_path / "in.nc")
    udf = _udf("""
        import xarray

        def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
            return cube.max(dim="t") - cube.min(dim="t")
        """)
    result = _cube(connection).reduce_dimension(dimension="t", reducer=udf)
    result.download(tmp_path / "out.nc", format="netCDF")
    with xr.open_dataset(tmp_path / "out.nc") as dataset:
        actual = dataset[["B04", "B08"]].to_array("bands").load()
    expected = reference.max(dim="t") - reference.min(dim="t")
    assert "t" not in actual.dims
    np.testing.assert_allclose(actual.transpose(*expected.dims).values, expected.values, rtol=1e-6)


def test_apply_dimension_t_with_timeseries_udf(connection, tmp_path):
    reference = _download(_cube(connection), tmp_path / "in.nc")
    udf = _udf("""
        import pandas

        def apply_timeseries(series: pandas.Series, context: dict) -> pandas.Series:
            return series - series.mean()
        """)
    result = _download(_cube(connection).apply_dimension(dimension="t", process=udf), tmp_path / "out.nc")
    expected = reference - reference.mean(dim="t")
    np.testing.assert_allclose(result.transpose(*expected.dims).values, expected.values, rtol=1e-5, atol=1e-6)


def test_exception_in_udf_quotes_its_traceback(connection, tmp_path):
    udf = _udf("""
        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            values = cube.get_array()
            raise ValueError("the crop model needs 3 bands, got %d" % values.sizes["bands"])
        """)
    error = _udf_error(_cube(connection).apply(udf), tmp_path)
    assert "ValueError: the crop model needs 3 bands, got 2" in error.message
    assert 'line 4, in apply_datacube' in error.message and "raise ValueError(" in error.message


ESCAPE = """
    import os, socket, sys

    def attempt():
{attempt}

    def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
        try:
            outcome = attempt()
        except Exception as exc:
            raise RuntimeError("BLOCKED " + type(exc).__name__ + ": " + str(exc))
        raise RuntimeError("ESCAPED " + repr(outcome)[:300])
"""


def _escape_udf(attempt: str) -> openeo.UDF:
    return _udf(ESCAPE.format(attempt=textwrap.indent(textwrap.dedent(attempt), " " * 8)))


def test_udf_cannot_reach_the_network(connection, udf_server, tmp_path):
    port = udf_server.root.rsplit(":", 1)[1]
    udf = _escape_udf(f"""
        return socket.create_connection(("127.0.0.1", {port}), timeout=2)
        """)
    error = _udf_error(_cube(connection).apply(udf), tmp_path)
    assert "BLOCKED OSError" in error.message or "BLOCKED ConnectionRefusedError" in error.message, error.message
    udf = _escape_udf("""
        return socket.getaddrinfo("example.org", 443)
        """)
    assert "BLOCKED" in _udf_error(_cube(connection).apply(udf), tmp_path).message


@pytest.mark.parametrize("target", ["backend.db", "secret.key", "demo-catalog/catalog.json"])
def test_udf_cannot_read_the_servers_files(connection, session_data_dir, tmp_path, target):
    path = session_data_dir / target
    assert path.exists()  # the server has it
    udf = _escape_udf(f"""
        return open({str(path)!r}, "rb").read(100)
        """)
    assert "BLOCKED FileNotFoundError" in _udf_error(_cube(connection).apply(udf), tmp_path).message


def test_udf_sees_no_host_directories_nor_server_environment(connection, tmp_path):
    # the jail mirrors the Python installation read-only, so its top directory (/work, /check, ...) is expected
    allowed = {"usr", "bin", "lib", "lib64", "sbin", "dev", "proc", "spool", "tmp", "root"}
    allowed |= {prefix.split("/")[1] for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}}
    udf = _escape_udf(f"""
        leaked = [name for name in os.listdir("/") if name not in {sorted(allowed)!r}]
        leaked += [key for key in os.environ if "OPENEO" in key or "SECRET" in key]
        leaked += ["/etc"] if os.path.exists("/etc") else []
        for where in ("/spool", "/tmp", "/"):  # other chunks' directories; places shared by chunks
            try:
                leaked.append(("listed", where, os.listdir(where)) if where == "/spool" else
                              ("wrote", where, open(where + "/x", "w")))
            except PermissionError:
                pass
        if leaked:
            return leaked
        raise PermissionError("nothing visible; uid " + str(os.getuid()))
        """)
    message = _udf_error(_cube(connection).apply(udf), tmp_path).message
    assert "BLOCKED PermissionError" in message and SECRET_ENV not in message
    assert "uid 0" not in message  # not root


@pytest.fixture(scope="module")
def roomy_cpu_connection(session_data_dir):
    """The same 64 MiB spool with CPU and time to spare: filling it costs system time (tmpfs pages), which
    under a loaded CI machine once exceeded the 3 CPU seconds of the module's server."""
    settings = load_settings(data_dir=session_data_dir, udf_memory_mb=256, udf_cpu_seconds=60, udf_timeout=90,
                             udf_spool_mb=64)
    server = LiveServer(create_app(settings))
    yield openeo.connect(server.url).authenticate_basic(*server.new_user())
    server.stop()


def test_files_a_udf_writes_are_bounded(roomy_cpu_connection, tmp_path):
    connection = roomy_cpu_connection
    udf = _escape_udf("""
        block, written = b"x" * 2**20, 0
        for index in range(10_000):  # 10 GB if nothing stopped it
            with open(f"fill-{index}", "wb") as file:
                file.write(block)
            written += 1
        return written
        """)
    assert "No space left on device" in _udf_error(_cube(connection).apply(udf), tmp_path).message
    test_apply_with_udf_matches_numpy(connection, tmp_path)  # the space is free again for the next chunk


def test_fork_bomb_is_contained(connection, tmp_path):
    udf = _udf("""
        import os

        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        """)
    error = _udf_error(_cube(connection).apply(udf), tmp_path)
    assert "udf_timeout" in error.message or "udf_cpu_seconds" in error.message
    assert _sandbox_processes_end()  # the bomb's at once, idle ones of earlier requests after IDLE_SECONDS
    test_apply_with_udf_matches_numpy(connection, tmp_path)  # and the next UDF runs


def _sandbox_processes_end() -> bool:
    deadline = time.monotonic() + worker.IDLE_SECONDS + 5
    while time.monotonic() < deadline:
        listed = subprocess.run(["ps", "-e", "-o", "uid="], capture_output=True, text=True).stdout.split()
        if not [uid for uid in listed if int(uid) >= 1_000_000]:
            return True
        time.sleep(0.2)
    return False


def test_memory_over_the_limit_is_an_openeo_error(connection, tmp_path):
    udf = _udf("""
        import numpy

        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            hog = numpy.ones((512, 1024, 1024))  # 4 GiB
            return cube
        """)
    message = _udf_error(_cube(connection).apply(udf), tmp_path).message
    assert "more memory than the 256 MiB" in message and "udf_memory_mb" in message


def test_endless_loop_hits_the_cpu_limit(connection, tmp_path):
    udf = _udf("""
        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            while True:
                pass
        """)
    assert "more than 3 CPU seconds" in _udf_error(_cube(connection).apply(udf), tmp_path).message


def test_sleeping_udf_hits_the_wall_clock_timeout(connection, tmp_path):
    udf = _udf("""
        import time

        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            time.sleep(600)
        """)
    assert "longer than 6 s" in _udf_error(_cube(connection).apply(udf), tmp_path).message


def test_unknown_runtime_is_refused(connection, tmp_path):
    udf = openeo.UDF("def apply_datacube(cube, context):\n    return cube\n", runtime="R")
    with pytest.raises(OpenEoApiError) as caught:
        _cube(connection).apply(udf).download(tmp_path / "out.nc", format="netCDF")
    assert caught.value.code == "InvalidRuntime" and "Python" in caught.value.message


def test_overlapping_udf_requests_get_their_own_results(udf_server, tmp_path):
    """One fork server per server process, shared by its request threads: answers go to their callers."""
    from concurrent.futures import ThreadPoolExecutor

    name, password = udf_server.new_user()
    reference = _download(_cube(openeo.connect(udf_server.url).authenticate_basic(name, password)),
                          tmp_path / "in.nc")
    code = textwrap.dedent("""
        import time

        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            time.sleep(0.2)  # overlap for sure
            return XarrayDataCube(cube.get_array() * context["factor"])
        """)

    def run(factor: int) -> None:
        connection = openeo.connect(udf_server.url).authenticate_basic(name, password)
        udf = openeo.UDF(code, runtime="Python", context={"factor": factor})
        _cube(connection).apply(udf).download(tmp_path / f"out-{factor}.nc", format="netCDF")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [2, 3, 5, 7]))
    for factor in [2, 3, 5, 7]:  # read here, one at a time: the netCDF4 library (this test's reader) is not thread-safe
        with xr.open_dataset(tmp_path / f"out-{factor}.nc") as dataset:
            result = dataset[["B04", "B08"]].to_array("bands")
            np.testing.assert_allclose(result.values, reference.values * factor, rtol=1e-6)


def test_run_udf_on_a_whole_cube(connection, tmp_path):
    reference = _download(_cube(connection), tmp_path / "in.nc")
    code = textwrap.dedent("""
        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            return XarrayDataCube(cube.get_array() - 1)
        """)
    cube = _cube(connection)
    result = _download(cube.process("run_udf", data=cube, udf=code, runtime="Python"), tmp_path / "out.nc")
    np.testing.assert_allclose(result.values, reference.values - 1, rtol=1e-6)


def test_validation_accepts_udf_graphs_and_lists_run_udf(connection):
    udf = _udf("""
        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            return cube
        """)
    graph = _cube(connection).reduce_dimension(dimension="t", reducer=udf).flat_graph()
    assert connection.validate_process_graph(graph) == []
    spec = connection.describe_process("run_udf")
    assert "inline" in spec["description"]


def test_run_udf_among_other_processes_of_a_callback_is_explained(connection, tmp_path):
    from openeo.processes import run_udf

    code = "def apply_datacube(cube, context):\n    return cube\n"
    cube = _cube(connection).apply(lambda x: run_udf(data=x, udf=code, runtime="Python") + 1)
    with pytest.raises(OpenEoApiError) as caught:
        cube.download(tmp_path / "out.nc", format="netCDF")
    assert caught.value.code == "ProcessParameterInvalid" and "only process of the callback" in caught.value.message


def test_batch_job_with_udf_on_the_dask_cluster(live_server, job_runner, tmp_path):
    """Chunks run on the cluster's worker processes, each with a fork server of its own."""
    name, password = live_server.new_user()
    connection = openeo.connect(live_server.url).authenticate_basic(name, password)
    reference = _download(_cube(connection), tmp_path / "in.nc")
    udf = _udf("""
        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            return XarrayDataCube(cube.get_array() * 10)
        """)
    job = _cube(connection).apply(udf).save_result(format="netCDF").create_job(title="udf")
    job.start_and_wait(max_poll_interval=1, print=lambda *a, **k: None)
    [asset] = job.get_results().get_assets()
    asset.download(tmp_path / "job.nc")
    with xr.open_dataset(tmp_path / "job.nc") as dataset:
        result = dataset[["B04", "B08"]].to_array("bands").load()
    np.testing.assert_allclose(result.values, reference.values * 10, rtol=1e-6)


def test_apply_neighborhood_with_udf_sees_the_overlap(connection, tmp_path):
    """Each neighbourhood (tile plus overlap) is one UDF call; here the UDF checks the size it got."""
    reference = _download(_cube(connection), tmp_path / "in.nc")
    udf = _udf("""
        import xarray

        def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
            assert cube.sizes["x"] == cube.sizes["y"] == 32 + 2 * 8, dict(cube.sizes)
            return cube * 3
        """)
    size = [{"dimension": "x", "value": 32, "unit": "px"}, {"dimension": "y", "value": 32, "unit": "px"}]
    overlap = [{"dimension": "x", "value": 8, "unit": "px"}, {"dimension": "y", "value": 8, "unit": "px"}]
    cube = _cube(connection).apply_neighborhood(process=udf, size=size, overlap=overlap)
    result = _download(cube, tmp_path / "out.nc")
    np.testing.assert_allclose(result.transpose(*reference.dims).values, reference.values * 3, rtol=1e-6)


def test_reduce_dimension_bands_with_an_ndvi_udf(connection, tmp_path):
    reference = _download(_cube(connection), tmp_path / "in.nc")
    udf = _udf("""
        import xarray

        def apply_datacube(cube: xarray.DataArray, context: dict) -> xarray.DataArray:
            red, nir = cube.sel(bands="B04"), cube.sel(bands="B08")
            return (nir - red) / (nir + red)
        """)
    _cube(connection).reduce_dimension(dimension="bands", reducer=udf).download(tmp_path / "out.nc",
                                                                                 format="netCDF")
    with xr.open_dataset(tmp_path / "out.nc") as dataset:
        [name] = [n for n, v in dataset.data_vars.items() if {"x", "y"} <= set(v.dims)]
        actual = dataset[name].load()
    red, nir = reference.sel(bands="B04"), reference.sel(bands="B08")
    expected = (nir - red) / (nir + red)
    np.testing.assert_allclose(actual.transpose(*expected.dims).values, expected.values, rtol=1e-5)
    assert np.nanmax(actual.values) > 0.5  # fields in June


def test_udf_code_from_the_users_workspace(udf_server, connection, tmp_path):
    reference = _download(_cube(connection), tmp_path / "in.nc")
    local = tmp_path / "halve.py"
    local.write_text(textwrap.dedent("""
        def apply_datacube(cube: XarrayDataCube, context: dict) -> XarrayDataCube:
            return XarrayDataCube(cube.get_array() / 2)
        """))
    connection.upload_file(local, target="udfs/halve.py")
    result = _download(_cube(connection).apply(openeo.UDF("udfs/halve.py", runtime="Python")), tmp_path / "out.nc")
    np.testing.assert_allclose(result.values, reference.values / 2, rtol=1e-6)

    name, password = udf_server.new_user()  # another user has no such file, and cannot reach ours
    other = openeo.connect(udf_server.url).authenticate_basic(name, password)
    with pytest.raises(OpenEoApiError) as caught:
        _cube(other).apply(openeo.UDF("udfs/halve.py", runtime="Python")).download(tmp_path / "x.nc", format="netCDF")
    assert caught.value.code == "FileNotFound"


def test_udf_by_url_is_refused_with_what_to_do(connection, tmp_path):
    with pytest.raises(OpenEoApiError) as caught:
        udf = openeo.UDF("https://example.org/udf.py", runtime="Python")
        _cube(connection).apply(udf).download(tmp_path / "out.nc", format="netCDF")
    assert caught.value.code == "ProcessParameterInvalid" and "workspace" in caught.value.message
