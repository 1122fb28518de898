"""Bands by common name (issue 9, item 3) and the names of band-less results (item 12).

The processes run as graph nodes through the Executor with the registered implementations; the loaded
cubes come from the demo catalog; every writer is fed a cube carrying the ``common_name`` coordinate.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr

from apicore import errors
from backend.catalog.metadata import to_openeo_collection
from backend.catalog.registry import CollectionRef
from backend.catalog.sources import StaticCatalogSource
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.processing.engine.executor import Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.loading import load_collection_cube
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations
from backend.processing.writers import write_result
from tests.unit.test_writers import make_cube

COMMON_NAME = "common_name"  # the coordinate openeo-processes-dask's ndvi looks for
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning",
                                        "ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def s2_like(bands=("B04", "B08", "B8A", "SCL"), commons=("red", "nir", "nir", "")) -> xr.DataArray:
    cube = make_cube(width=16, height=12, bands=list(bands), dates=["2022-06-01", "2022-06-02"], chunks=8)
    return cube.assign_coords({COMMON_NAME: ("bands", np.array(commons, dtype=str))})


def node(process_id: str, result: bool = False, **arguments) -> dict:
    return {"process_id": process_id, "arguments": arguments, **({"result": True} if result else {})}


def run(implementations, process_id: str, cube: xr.DataArray, **arguments):
    graph = {"p": node(process_id, True, data={"from_parameter": "cube"}, **arguments)}
    return Executor(implementations, RunContext()).run(Graph.parse(graph), {"cube": cube})


def commons(cube: xr.DataArray) -> list[str]:
    return [str(v) for v in cube[COMMON_NAME].values]


# --- loading ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(session_data_dir):
    source = StaticCatalogSource(str(ensure_demo_catalog(session_data_dir / "demo-catalog")))
    return {cid: (CollectionRef(cid, cid, source), to_openeo_collection(source.collection(cid), cid, "http://b"))
            for cid in (DEMO_S2_COLLECTION, DEMO_DEM_COLLECTION)}


AREA = {"west": 679720, "south": 5151080, "east": 680000, "north": 5151360, "crs": 32632}


@pytest.mark.parametrize("collection, bands, labels, expected", [
    (DEMO_S2_COLLECTION, ["nir", "B04", "SCL"], ["B08", "B04", "SCL"], ["nir", "red", ""]),
    (DEMO_S2_COLLECTION, None, ["B02", "B03", "B04", "B08", "B11", "SCL"],
     ["blue", "green", "red", "nir", "swir16", ""]),
    (DEMO_DEM_COLLECTION, None, ["DEM"], [""]),
])
def test_loaded_cubes_carry_the_common_names(demo, collection, bands, labels, expected):
    ref, metadata = demo[collection]
    interval = ["2022-06-01", "2022-06-03"] if collection == DEMO_S2_COLLECTION else ["2022-01-01", "2023-01-01"]
    cube = load_collection_cube(ref, metadata, AREA, interval, bands)
    assert list(cube.bands.values) == labels and commons(cube) == expected
    assert cube[COMMON_NAME].dims == ("bands",) and COMMON_NAME not in cube.indexes  # not an index


# --- ndvi ---------------------------------------------------------------------------------------


def test_ndvi_defaults_resolve_common_names(implementations):
    cube = s2_like(bands=("B04", "B08", "SCL"), commons=("red", "nir", ""))
    result = run(implementations, "ndvi", cube)
    red, nir = cube.sel(bands="B04").values, cube.sel(bands="B08").values
    assert result.dims == ("t", "y", "x") and result.name == "NDVI"
    np.testing.assert_allclose(result.values, (nir - red) / (nir + red), rtol=1e-6)


def test_ndvi_band_name_wins_over_common_name(implementations):
    cube = s2_like(bands=("red", "B04", "B08"), commons=("", "red", "nir"))  # a band *labelled* red
    result = run(implementations, "ndvi", cube)
    red, nir = cube.sel(bands="red").values, cube.sel(bands="B08").values
    np.testing.assert_allclose(result.values, (nir - red) / (nir + red), rtol=1e-6)


def test_ndvi_errors_say_what_to_change(implementations):
    with pytest.raises(errors.OpenEOError) as info:  # B08 and B8A are both "nir"
        run(implementations, "ndvi", s2_like())
    assert info.value.code == "NirBandAmbiguous" and info.value.status == 400
    assert "2 bands have the common name 'nir' (B08, B8A)" in info.value.message
    with pytest.raises(errors.OpenEOError) as info:
        run(implementations, "ndvi", s2_like(), nir="B08", red="rouge")
    assert info.value.code == "RedBandAmbiguous" and "B04 (red), B08 (nir), B8A (nir), SCL" in info.value.message
    with pytest.raises(errors.OpenEOError) as info:
        run(implementations, "ndvi", s2_like(), nir="B08", target_band="SCL")
    assert info.value.code == "BandExists"
    with pytest.raises(errors.OpenEOError) as info:  # no common names at all (e.g. built by hand)
        run(implementations, "ndvi", s2_like().drop_vars(COMMON_NAME))
    assert info.value.code == "NirBandAmbiguous" and "bands: B04, B08, B8A, SCL" in info.value.message
    with pytest.raises(errors.OpenEOError) as info:
        run(implementations, "ndvi", s2_like().isel(bands=0, drop=True))
    assert info.value.code == "DimensionAmbiguous"


def test_ndvi_target_band_keeps_the_common_names(implementations):
    cube = s2_like()
    result = run(implementations, "ndvi", cube, nir="B08", target_band="NDVI")
    assert list(result.bands.values) == ["B04", "B08", "B8A", "SCL", "NDVI"] and result.dims == cube.dims
    assert commons(result) == ["red", "nir", "nir", "", ""]
    red, nir = cube.sel(bands="B04").values, cube.sel(bands="B08").values
    np.testing.assert_allclose(result.sel(bands="NDVI").values, (nir - red) / (nir + red), rtol=1e-6)
    np.testing.assert_array_equal(result.sel(bands="SCL").values, cube.sel(bands="SCL").values)


# --- filter_bands -------------------------------------------------------------------------------


def test_filter_bands_by_name_and_common_name(implementations):
    cube = s2_like()
    result = run(implementations, "filter_bands", cube, bands=["SCL", "nir", "B04", "red"])
    # every band of a common name, in the cube's order; a band matched twice is kept once
    assert list(result.bands.values) == ["SCL", "B08", "B8A", "B04"] and commons(result) == ["", "nir", "nir", "red"]
    np.testing.assert_array_equal(result.sel(bands="B8A").values, cube.sel(bands="B8A").values)


def test_filter_bands_errors(implementations):
    with pytest.raises(errors.ProcessParameterInvalid) as info:
        run(implementations, "filter_bands", s2_like(), bands=["red", "swir22"])
    assert "'swir22' is neither the name nor the common name of a band" in info.value.message
    with pytest.raises(errors.OpenEOError) as info:
        run(implementations, "filter_bands", s2_like(), bands=[])
    assert info.value.code == "BandFilterParameterMissing" and info.value.status == 400


# --- processes that relabel bands keep the coordinate; the writers take it ------------------------


def test_relabelling_processes_keep_the_common_names(implementations):
    cube = s2_like(bands=("B04", "B08"), commons=("red", "nir"))
    renamed = run(implementations, "rename_labels", cube, dimension="bands", target=["r", "n"])
    assert list(renamed.bands.values) == ["r", "n"] and commons(renamed) == ["red", "nir"]
    absolute = {"process_graph": {"a": node("absolute", True, x={"from_parameter": "data"})}}
    applied = run(implementations, "apply_dimension", cube, dimension="bands", process=absolute)
    assert commons(applied) == ["red", "nir"]
    ndvi_of_renamed = run(implementations, "ndvi", renamed)  # still found by common name
    np.testing.assert_allclose(ndvi_of_renamed.values, run(implementations, "ndvi", cube).values)


def test_merge_cubes_keeps_the_common_names(implementations):
    cube = s2_like()
    graph = {"a": node("filter_bands", data={"from_parameter": "cube"}, bands=["B04"]),
             "b": node("filter_bands", data={"from_parameter": "cube"}, bands=["B08", "SCL"]),
             "m": node("merge_cubes", True, cube1={"from_node": "a"}, cube2={"from_node": "b"})}
    merged = Executor(implementations, RunContext()).run(Graph.parse(graph), {"cube": cube})
    assert list(merged.bands.values) == ["B04", "B08", "SCL"] and commons(merged) == ["red", "nir", ""]
    np.testing.assert_array_equal(merged.sel(bands="B08").values, cube.sel(bands="B08").values)
    add = {"process_graph": {"s": node("add", True, x={"from_parameter": "x"}, y={"from_parameter": "y"})}}
    graph = {"m": node("merge_cubes", True, cube1={"from_parameter": "cube"}, cube2={"from_parameter": "cube"},
                       overlap_resolver=add)}
    without = Executor(implementations, RunContext()).run(Graph.parse(graph), {"cube": cube.drop_vars(COMMON_NAME)})
    assert COMMON_NAME not in without.coords
    np.testing.assert_allclose(without.values, 2 * cube.values)


@pytest.mark.parametrize("fmt", ["GTiff", "netCDF", "Zarr", "JSON", "CSV"])
def test_writers_take_cubes_with_common_names(fmt, tmp_path):
    cube = s2_like(bands=("B04", "B08"), commons=("red", "nir"))
    result = write_result(cube, fmt, {}, tmp_path)
    if fmt == "GTiff":
        with rasterio.open(result.path) as tif:
            assert tif.descriptions == ("2022-06-01/B04", "2022-06-01/B08", "2022-06-02/B04", "2022-06-02/B08")
            np.testing.assert_array_equal(tif.read(4), cube.values[1, 1])
    elif fmt == "netCDF":
        with xr.open_dataset(result.path) as ds:
            assert set(ds.data_vars) == {"B04", "B08", "crs"} and COMMON_NAME not in ds.variables
            np.testing.assert_array_equal(ds["B08"].values, cube.values[:, 1])
    elif fmt == "JSON":
        document = json.loads(result.path.read_text())
        assert document["coords"]["bands"] == ["B04", "B08"] and COMMON_NAME not in document["coords"]
    elif fmt == "CSV":
        assert result.path.read_text().splitlines()[0].endswith("B04,B08")


# --- names of band-less results (item 12) ---------------------------------------------------------


def _netcdf_names(cube: xr.DataArray, tmp_path) -> list[str]:
    result = write_result(cube, "netCDF", {}, tmp_path)
    with xr.open_dataset(result.path, engine="netcdf4") as ds:
        names = [str(n) for n in ds.data_vars if n != "crs"]
        np.testing.assert_array_equal(ds[names[0]].values, cube.values)
    return names


def test_bandless_netcdf_variable_names(tmp_path):
    cube = make_cube(width=16, height=12, chunks=8)
    assert _netcdf_names(cube.isel(bands=1).rename("NDVI"), tmp_path / "named") == ["NDVI"]
    assert _netcdf_names(cube.isel(bands=1), tmp_path / "scalar") == ["B08"]  # the band label it still carries
    assert _netcdf_names(cube.isel(bands=1, drop=True), tmp_path / "anonymous") == ["var"]
    assert _netcdf_names(cube.isel(bands=1, drop=True).rename("x"), tmp_path / "clash") == ["x_"]
    written = write_result(cube.isel(bands=1, drop=True).rename("NDVI"), "GTiff", {}, tmp_path / "tif")
    with rasterio.open(written.path) as tif:
        assert tif.descriptions == tuple(pd.to_datetime(cube.t.values).strftime("%Y-%m-%d"))
    single = write_result(cube.isel(t=0, bands=1, drop=True).rename("NDVI"), "GTiff", {}, tmp_path / "tif1")
    with rasterio.open(single.path) as tif:
        assert tif.descriptions == ("NDVI",)
