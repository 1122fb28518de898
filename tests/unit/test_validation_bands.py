"""validate_process: ndvi's and filter_bands' band names against the bands that reach them (issue 9, item 3).

Reported only when certain: bands followed from load_collection through processes that keep them; anything
unknown on the way (a parameter, merge_cubes, a reduction over bands) reports nothing.
"""

from __future__ import annotations

import pytest

from backend.demo import DEMO_DEM_COLLECTION
from tests.unit.test_validation import (callback, catalog, catalog_json, codes, implementations,  # noqa: F401
                                        load, make_context, node, param, ref, validate)


def dem(**overrides):
    return node("load_collection", **{"id": DEMO_DEM_COLLECTION, "spatial_extent": None, "temporal_extent": None,
                                      **overrides})


MEAN = callback(m=node("mean", data=param("data"), result=True))


def test_ndvi_on_a_collection_without_nir_and_red(make_context):
    found = validate(make_context, {"l": dem(), "n": node("ndvi", data=ref("l"), result=True)})
    assert codes(found) == [("n", "NirBandAmbiguous"), ("n", "RedBandAmbiguous")]
    assert "no band is named or has the common name 'nir' (bands: DEM)" in found[0]["message"]
    assert "set `nir`" in found[0]["message"]


@pytest.mark.parametrize("graph", [
    {"l": load(bands=None), "n": node("ndvi", data=ref("l"), result=True)},  # all bands: B08 is nir, B04 red
    {"l": load(bands=["red", "nir"]), "n": node("ndvi", data=ref("l"), nir="B08", red="red", result=True)},
    {"l": load(bands=None), "f": node("filter_bands", data=ref("l"), bands=["nir", "red"]),
     "n": node("ndvi", data=ref("f"), target_band="NDVI"),
     "g": node("filter_bands", data=ref("n"), bands=["NDVI"], result=True)},
])
def test_resolvable_bands_are_fine(make_context, graph):
    assert validate(make_context, graph) == []


def test_bands_are_followed_through_processes_that_keep_them(make_context):
    graph = {"l": load(bands=["B02", "B04"]),
             "t": node("filter_temporal", data=ref("l"), extent=["2022-06-01", "2022-06-10"]),
             "r": node("reduce_dimension", data=ref("t"), dimension="t", reducer=MEAN),
             "a": node("apply", data=ref("r"), process=callback(x=node("absolute", x=param("x"), result=True))),
             "n": node("ndvi", data=ref("a"), red="B02", target_band="B04", result=True)}
    found = validate(make_context, graph)
    assert codes(found) == [("n", "NirBandAmbiguous"), ("n", "BandExists")]
    assert "(bands: B02 (blue), B04 (red))" in found[0]["message"]


def test_filter_bands_names_that_do_not_resolve(make_context):
    graph = {"l": load(bands=None), "f": node("filter_bands", data=ref("l"), bands=["nir", "swir22"]),
             "n": node("ndvi", data=ref("f"), result=True)}
    found = validate(make_context, graph)
    assert codes(found) == [("f", "ProcessParameterInvalid")]  # ndvi after it: its bands are unknown
    assert "'swir22' is neither the name nor the common name of a band" in found[0]["message"]


@pytest.mark.parametrize("graph", [
    {"n": node("ndvi", data=param("cube"), result=True)},  # a parameter: unknown bands
    {"l": dem(), "r": node("reduce_dimension", data=ref("l"), dimension="bands", reducer=MEAN),
     "n": node("ndvi", data=ref("r"), result=True)},
    {"l": dem(), "s": load(), "m": node("merge_cubes", cube1=ref("l"), cube2=ref("s")),
     "n": node("ndvi", data=ref("m"), result=True)},
    {"l": dem(), "n": node("ndvi", namespace="user", data=ref("l"), result=True)},  # a UDP called ndvi
])
def test_unknown_bands_report_nothing(make_context, graph):
    udps = {"ndvi": {"id": "ndvi", "process_graph": {"x": node("add", x=1, y=1, result=True)}}}
    assert [c for c in codes(validate(make_context, graph, udps=udps)) if c[1].endswith("Ambiguous")] == []


def test_ndvi_in_a_callback_and_a_udp_body(make_context):
    body = {"l": dem(), "n": node("ndvi", data=ref("l"), result=True)}
    udps = {"dem_ndvi": {"id": "dem_ndvi", "process_graph": body}}
    found = validate(make_context, {"c": node("dem_ndvi", result=True)}, udps=udps)
    assert codes(found) == [("c/dem_ndvi/n", "NirBandAmbiguous"), ("c/dem_ndvi/n", "RedBandAmbiguous")]
