"""Loading under the synchronous limits: the size is known from the grid before any graph is built, and
the request's deadline is checked in the stages that are no Dask tasks (item search, output grid)."""

from __future__ import annotations

import pytest
from odc.stac import parse_items

from apicore import errors
from backend.catalog.metadata import to_openeo_collection
from backend.catalog.registry import CollectionRef
from backend.catalog.sources import StaticCatalogSource
from backend.demo import DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.processing.compute import ComputeScope, computing
from backend.processing.limits import Deadline
from backend.processing.loading import cube as cube_module
from backend.processing.loading import load_collection_cube, plan_load
from backend.processing.loading.grid import choose_geobox

WORLD = {"west": -180, "east": 180, "south": -85, "north": 85}
AREA = dict(west=679720, east=680680, south=5151080, north=5151920, crs=32632)


@pytest.fixture(scope="module")
def demo(session_data_dir):
    source = StaticCatalogSource(str(ensure_demo_catalog(session_data_dir / "demo-catalog")))
    ref = CollectionRef(DEMO_S2_COLLECTION, DEMO_S2_COLLECTION, source)
    return ref, to_openeo_collection(source.collection(DEMO_S2_COLLECTION), DEMO_S2_COLLECTION, "http://backend")


def test_whole_world_load_is_refused_before_the_cube_is_built(demo, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("odc-stac was asked to build the whole-world graph")

    monkeypatch.setattr(cube_module, "load_cube", never)
    with pytest.raises(errors.ProcessGraphComplexity, match=r"would load [\d,]+ values .*'t': 10, 'bands': 6"):
        load_collection_cube(*demo, WORLD, ["1990-01-01", "2100-01-01"], None, max_values=400_000_000)


def test_plan_sizes_equal_the_loaded_cube(demo):
    plan = plan_load(*demo, AREA, ["2022-06-01", "2022-07-01"], ["B04", "B08"])
    cube = load_collection_cube(*demo, AREA, ["2022-06-01", "2022-07-01"], ["B04", "B08"], max_values=plan.values)
    assert plan.sizes == dict(cube.sizes) == {"t": 5, "bands": 2, "y": 84, "x": 96}
    with pytest.raises(errors.ProcessGraphComplexity, match="80,640 values"):
        plan.check_size(plan.values - 1, "load_collection")


def test_deadline_stops_the_item_search(demo):
    with computing(ComputeScope(threads=1, deadline=Deadline(0))):
        with pytest.raises(errors.ProcessGraphComplexity, match="during the item search"):
            plan_load(*demo, AREA, ["2022-06-01", "2022-07-01"], ["B04"])


def test_deadline_stops_the_grid_stage(demo):
    plan = plan_load(*demo, AREA, ["2022-06-01", "2022-07-01"], ["B04"])
    parsed = list(parse_items(plan.items))
    with computing(ComputeScope(threads=1, deadline=Deadline(0))):
        with pytest.raises(errors.ProcessGraphComplexity, match="during the choice of the output grid"):
            choose_geobox(parsed, None, None)
    assert choose_geobox(parsed, None, None).shape == (1280, 1280)  # outside any request: no deadline
