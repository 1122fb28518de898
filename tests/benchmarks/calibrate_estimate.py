"""Estimate vs actual costs of batch jobs on the demo data: GET /jobs/{id}/estimate against the costs the
runner charged, for a few benchmark graphs. Prints the ratios and the seconds per megapixel to use.

    .venv/bin/python tests/benchmarks/calibrate_estimate.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

TILE = {"west": 675000, "south": 5145000, "east": 687800, "north": 5157800, "crs": 32632}
AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}


def graphs(con, collection):
    def load(extent, bands, dates=None):
        return con.load_collection(collection, spatial_extent=extent, temporal_extent=dates, bands=bands)

    return {
        "ndvi composite, small area": load(AREA, ["B04", "B08"], ["2022-06-01", "2022-07-01"])
        .ndvi(nir="B08", red="B04").reduce_dimension("t", "mean"),
        "ndvi median, one tile, 10 dates": load(TILE, ["B04", "B08"]).ndvi(nir="B08", red="B04")
        .reduce_dimension("t", "median"),
        "band math, one tile, 4 bands": load(TILE, ["B02", "B03", "B04", "B08"]).apply(lambda x: x * 2 + 1)
        .reduce_dimension("t", "max"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import openeo

    from backend.app import create_app
    from backend.demo import DEMO_S2_COLLECTION
    from backend.jobs.runner import JobRunner
    from backend.settings import load_settings
    from tests.conftest import LiveServer

    settings = load_settings(data_dir=Path(tempfile.mkdtemp(prefix="calibrate-")))
    server = LiveServer(create_app(settings))
    runner = JobRunner(server.services).start()
    try:
        name, password = server.new_user()
        con = openeo.connect(server.url).authenticate_basic(name, password)
        print("| graph | input Mpx | estimate | actual (median) | estimate / actual | CPU s per Mpx |")
        print("|---|---|---|---|---|---|")
        for label, cube in graphs(con, DEMO_S2_COLLECTION).items():
            actual, cpu_per_mpx, estimate, mpx = [], [], None, 0.0
            for _ in range(args.repeats):
                job = cube.create_job(out_format="GTiff")
                estimate = con.get(f"/jobs/{job.job_id}/estimate").json()["costs"]
                job.start_and_wait(max_poll_interval=0.3, print=lambda *_: None)
                metadata = job.describe()
                usage = metadata["usage"]
                mpx = usage["input"]["value"]
                actual.append(metadata["costs"])
                cpu_per_mpx.append(usage["cpu"]["value"] / mpx if mpx else 0.0)
                job.delete()
            median = statistics.median(actual)
            print(f"| {label} | {mpx:g} | {estimate:.3f} | {median:.3f} | {estimate / median:.2f} | "
                  f"{statistics.median(cpu_per_mpx):.4f} |")
    finally:
        runner.stop()
        server.stop()


if __name__ == "__main__":
    main()
