"""netCDF written and read by overlapping threads of one process, as gunicorn's request threads and a runner's
jobs do. With xarray's netcdf4 engine this crashes the process (a segfault, sometimes a hang) within about a
second of this load: the netCDF4 library is not thread-safe and xarray's locks leave metadata, open and
close unguarded. The load runs in a child process so that a crash fails this test instead of the test run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import numpy as np, pandas as pd, rioxarray, xarray as xr, dask.array as da

    from backend.processing.processes.load_uploaded_files import _read_netcdf
    from backend.processing.writers import write_result

    root = Path(sys.argv[2])

    def cube(factor):
        data = da.arange(3 * 2 * 64 * 48, chunks=3 * 2 * 64 * 48 // 4, dtype="float32").reshape(3, 2, 64, 48)
        cube = xr.DataArray(data * factor, dims=("t", "bands", "y", "x"), coords={
            "t": pd.date_range("2024-05-01", periods=3), "bands": ["B04", "B08"],
            "y": 5_600_000 - 10.0 * np.arange(64), "x": 500_000 + 10.0 * np.arange(48)})
        return cube.rio.write_crs("EPSG:32631")

    def write_and_read(task):
        round_, factor = task
        target = root / f"{round_}-{factor}"
        target.mkdir()
        written = write_result(cube(factor), "netCDF", {"chunksize": 32}, target)
        back = _read_netcdf(written.path, written.filename).transpose("t", "bands", "y", "x").values
        return bool(np.array_equal(back, cube(factor).values))

    with ThreadPoolExecutor(8) as pool:
        for round_ in range(int(sys.argv[1])):
            assert all(pool.map(write_and_read, [(round_, f) for f in range(1, 17)])), "a file read back wrong"
    print("ok")
""")


def test_overlapping_threads_write_and_read_netcdf_without_crashing(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, "6", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-3000:]
