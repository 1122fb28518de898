"""validate_process: every problem of a process reported at once, without running it or reading pixels."""

from __future__ import annotations

import copy
import shutil
import time
from types import SimpleNamespace

import odc.stac
import pytest
import rasterio

from apicore.cache import TtlMemoryCache
from backend.catalog.registry import CollectionRegistry
from backend.catalog.sources import StaticCatalogSource
from backend.demo import DEMO_DEM_COLLECTION, DEMO_S2_COLLECTION, ensure_demo_catalog
from backend.processing.engine.executor import RunContext
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations
from backend.processing.validation import ValidationContext, validate_process

AREA = {"west": 679720, "south": 5151080, "east": 680680, "north": 5151920, "crs": 32632}
JUNE = ["2022-06-01", "2022-07-01"]


def node(process_id, result=False, namespace=None, **arguments):
    return {"process_id": process_id, "arguments": arguments, **({"result": True} if result else {}),
            **({"namespace": namespace} if namespace else {})}


def ref(node_id):
    return {"from_node": node_id}


def param(name):
    return {"from_parameter": name}


def callback(**nodes):
    return {"process_graph": nodes}


def load(**overrides):
    return node("load_collection", **{"id": DEMO_S2_COLLECTION, "spatial_extent": AREA,
                                      "temporal_extent": JUNE, "bands": ["B04", "B08"], **overrides})


def ndvi_graph():
    return {
        "load": load(),
        "ndvi": node("ndvi", data=ref("load"), nir="B08", red="B04"),
        "mean": node("reduce_dimension", data=ref("ndvi"), dimension="t",
                     reducer=callback(m=node("mean", data=param("data"), result=True))),
        "save": node("save_result", data=ref("mean"), format="GTiff", options={"compression": "zstd"}, result=True),
    }


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


@pytest.fixture(scope="module")
def catalog_json(session_data_dir):
    return ensure_demo_catalog(session_data_dir / "demo-catalog")


def make_catalog(catalog_json) -> CollectionRegistry:
    return CollectionRegistry([(StaticCatalogSource(str(catalog_json)), {})], TtlMemoryCache(300))


@pytest.fixture(scope="module")
def catalog(catalog_json):
    return make_catalog(catalog_json)


@pytest.fixture
def make_context(implementations, catalog):
    def make(udps=None, user_id="alice", collections=catalog):
        services = SimpleNamespace(implementations=implementations, collections=collections)
        return RunContext(user_id=user_id, services=services, api_root="http://backend/openeo/1.2",
                          udp_lookup=lambda process_id: (udps or {}).get(process_id))
    return make


def validate(make_context, process_graph, **kwargs):
    return validate_process({"process_graph": process_graph}, make_context(**kwargs))


def codes(found):
    return [(e["id"], e["code"]) for e in found]


# --- valid processes --------------------------------------------------------------------------


def test_valid_ndvi_graph_on_the_demo_collection(make_context):
    assert validate(make_context, ndvi_graph()) == []


def test_unresolvable_parameters_are_not_errors(make_context):
    """The API: 'The validation MUST NOT throw an error for unresolvable process parameters.'"""
    graph = {"sub": node("subtract", x=param("nir"), y=param("red")),
             "sum": node("sum", data=[1, param("nir"), ref("sub")]),
             "div": node("divide", x=ref("sub"), y=ref("sum"), result=True)}
    assert validate(make_context, graph) == []


def test_references_skip_the_load_dry_run(make_context):
    graph = {"load": load(spatial_extent=param("area"), bands=param("bands")),
             "save": node("save_result", data=ref("load"), format=param("fmt"), result=True)}
    assert validate(make_context, graph) == []


def test_error_entries_have_the_spec_shape(make_context):
    (entry,) = validate(make_context, {"a": node("frobnicate", result=True)})
    assert entry == {"id": "a", "code": "ProcessUnsupported", "links": [], "message": entry["message"]}
    assert "'a'" in entry["message"] and "frobnicate" in entry["message"]


# --- all problems at once ---------------------------------------------------------------------


def test_five_different_problems_are_all_reported(make_context):
    graph = {
        "load1": load(),
        "load2": load(id="NO_SUCH_COLLECTION"),
        "load3": load(spatial_extent={**AREA, "west": 680680, "east": 679720}),
        "load4": load(bands=["B04", "B99"]),
        "frob": node("frobnicate", data=ref("load1")),
        "add": node("add", x=1),
        "save": node("save_result", data=ref("load1"), format="GTiff", result=True),
    }
    found = validate(make_context, graph)
    assert codes(found) == [("load2", "CollectionNotFound"), ("load3", "ProcessParameterInvalid"),
                            ("load4", "ProcessParameterInvalid"), ("frob", "ProcessUnsupported"),
                            ("add", "ProcessParameterRequired")]
    messages = {e["id"]: e["message"] for e in found}
    assert "NO_SUCH_COLLECTION" in messages["load2"]
    assert "spatial_extent" in messages["load3"] and "west (680680) is greater than east (679720)" in messages["load3"]
    assert "bands" in messages["load4"] and "'B99' does not exist" in messages["load4"]
    assert "frobnicate" in messages["frob"] and "'y'" in messages["add"]


def test_several_problems_in_one_load_collection_node(make_context):
    graph = {"load": load(bands=["B99"], spatial_extent={**AREA, "south": 5151920, "north": 5151080},
                          temporal_extent=["2022-06-10", "2022-06-01"], result=True)}
    found = validate(make_context, graph)
    assert codes(found) == [("load", "ProcessParameterInvalid")] * 3
    assert ["bands" in found[0]["message"], "south" in found[1]["message"],
            "interval is empty" in found[2]["message"]] == [True, True, True]


def test_unsupported_and_missing_arguments_of_one_node(make_context):
    found = validate(make_context, {"a": node("add", z=3, w=4, result=True)})
    assert codes(found) == [("a", "ProcessParameterUnsupported"), ("a", "ProcessParameterUnsupported"),
                            ("a", "ProcessParameterRequired"), ("a", "ProcessParameterRequired")]
    for entry, name in zip(found, ["'z'", "'w'", "'x'", "'y'"]):
        assert name in entry["message"] and "'add'" in entry["message"], entry


# --- argument types ---------------------------------------------------------------------------


def test_mistyped_argument(make_context):
    graph = {"load": load(), "r": node("reduce_dimension", data=ref("load"), dimension=5, result=True,
                                       reducer=callback(m=node("mean", data=param("data"), result=True)))}
    (error,) = validate(make_context, graph)
    assert (error["id"], error["code"]) == ("r", "ProcessParameterInvalid")
    assert "'dimension'" in error["message"] and "5 is not of type 'string'" in error["message"]


@pytest.mark.parametrize("arguments, fragment", [
    ({"data": [1, "two", 3]}, "'two' is not of type 'number', 'null' (at '1')"),
    ({"data": "1,2,3"}, "not of type 'array'"),
    ({"data": [1, 2], "ignore_nodata": "yes"}, "'yes' is not of type 'boolean'"),
])
def test_literal_values_against_the_parameter_schema(make_context, arguments, fragment):
    (error,) = validate(make_context, {"s": node("sum", result=True, **arguments)})
    assert error["code"] == "ProcessParameterInvalid" and fragment in error["message"], error


def test_schema_lists_are_any_of(make_context):
    """load_collection's bands schema is [array of strings, null]: null fits, a plain string does not."""
    assert validate(make_context, {"l": load(bands=None, result=True)}) == []
    (error,) = validate(make_context, {"l": load(bands="B04", result=True)})
    assert error["code"] == "ProcessParameterInvalid" and "expected array or null, got string" in error["message"]


def test_openeo_keywords_and_nested_references_are_ignored(make_context):
    """``subtype`` etc. are unknown to JSON Schema; references inside literals stand for any value."""
    graph = {"b": node("filter_bbox", data=param("cube"), result=True,
                       extent={"west": param("w"), "south": 1, "east": 2, "north": 3, "crs": 4326})}
    assert validate(make_context, graph) == []


# --- structure, callbacks ---------------------------------------------------------------------


def test_structure_error_stops_descending_into_that_graph(make_context):
    graph = {"a": node("frobnicate"), "b": node("add", x=1, y=2)}  # no result node
    (error,) = validate(make_context, graph)
    assert (error["id"], error["code"]) == ("process_graph", "ProcessGraphInvalid")
    assert "exactly one node" in error["message"]


def test_missing_or_empty_process_graph(make_context):
    context = make_context()
    assert codes(validate_process({}, context)) == [("process_graph", "ProcessGraphMissing")]
    assert codes(validate_process({"process_graph": {}}, context)) == [("process_graph", "ProcessGraphMissing")]
    assert codes(validate_process([1], context)) == [("process_graph", "ProcessGraphMissing")]


def test_callback_problems_are_found_with_their_path(make_context):
    graph = {
        "load": load(),
        "reduce1": node("reduce_dimension", data=ref("load"), dimension="t", reducer=callback(
            mean=node("meen", data=param("data")),
            out=node("multiply", x=ref("mean"), y="two", result=True))),
        "apply1": node("apply", data=ref("reduce1"), process=callback(
            a=node("add", x=param("x"), result=True))),  # y missing
        "apply2": node("apply", data=ref("apply1"), result=True, process=callback(
            a=node("add", x=param("x"), y=1))),  # no result node in the callback
    }
    found = validate(make_context, graph)
    assert codes(found) == [("reduce1/reducer/mean", "ProcessUnsupported"),
                            ("reduce1/reducer/out", "ProcessParameterInvalid"),
                            ("apply1/process/a", "ProcessParameterRequired"),
                            ("apply2/process", "ProcessGraphInvalid")]
    assert "'reduce1/reducer/mean'" in found[0]["message"] and "meen" in found[0]["message"]


def test_callbacks_nested_in_callbacks_and_in_objects(make_context):
    inner = callback(x=node("frobnicate", result=True))
    graph = {
        "load": load(properties={"eo:cloud_cover": callback(
            c=node("lte", x=param("value"), y=[20], result=True))}),
        "arr": node("array_apply", data=[1, 2], result=True, process=callback(
            a=node("array_apply", data=[3], process=inner, result=True))),
    }
    assert codes(validate(make_context, graph)) == [
        ("load/properties/eo:cloud_cover/c", "ProcessParameterInvalid"),
        ("arr/process/a/process/x", "ProcessUnsupported")]


# --- user-defined processes ----------------------------------------------------------------------


def udp(process_graph, *names):
    return {"id": "x", "parameters": [{"name": n, "schema": {"type": "number"}} for n in names],
            "process_graph": process_graph}


def test_known_udp_and_its_arguments(make_context):
    udps = {"plus_one": udp({"a": node("add", x=param("v"), y=1, result=True)}, "v")}
    ok = {"c": node("plus_one", v=41, result=True)}
    assert validate(make_context, ok, udps=udps) == []
    bad = {"c": node("plus_one", w=1, result=True), "d": node("plus_one", v="x", namespace="user")}
    assert codes(validate(make_context, bad, udps=udps)) == [
        ("c", "ProcessParameterUnsupported"), ("c", "ProcessParameterRequired"), ("d", "ProcessParameterInvalid")]


def test_unknown_udp(make_context):
    found = validate(make_context, {"c": node("my_missing_udp", namespace="user", result=True)}, udps={})
    assert codes(found) == [("c", "ProcessUnsupported")]
    assert "not one of your user-defined processes" in found[0]["message"]


def test_udp_body_problems_are_reported_once_with_the_call_path(make_context):
    udps = {"broken": udp({"a": node("frobnicate", result=True)})}
    graph = {"c1": node("broken"), "c2": node("broken", result=True)}
    assert codes(validate(make_context, graph, udps=udps)) == [("c1/broken/a", "ProcessUnsupported")]


def test_udp_cycle(make_context):
    udps = {"ping": udp({"p": node("pong", result=True)}),
            "pong": udp({"q": node("ping", result=True)}),
            "selfish": udp({"s": node("selfish", result=True)})}
    found = validate(make_context, {"c": node("ping"), "d": node("selfish", result=True)}, udps=udps)
    assert codes(found) == [("c/ping/p/pong/q", "ProcessGraphInvalid"), ("d/selfish/s", "ProcessGraphInvalid")]
    assert "cycle: ping -> pong -> ping" in found[0]["message"]
    assert "cycle: selfish -> selfish" in found[1]["message"]


def test_anonymous_callers_have_no_udps(make_context):
    asked = []
    context = make_context(user_id=None)
    context.udp_lookup = lambda process_id: asked.append(process_id) or {"process_graph": {}}
    found = validate_process({"process_graph": {"c": node("plus_one", result=True)}}, context)
    assert codes(found) == [("c", "ProcessUnsupported")] and "log in" in found[0]["message"]
    assert asked == []


# --- save_result ------------------------------------------------------------------------------


def test_save_result_format_and_options(make_context):
    graph = {"load": load(),
             "s1": node("save_result", data=ref("load"), format="JPEG2000"),
             "s2": node("save_result", data=ref("load"), format="gtiff", options={"colour": "red"}),
             "s3": node("save_result", data=ref("load"), format="PNG", options={"scale_min": 0}, result=True)}
    found = validate(make_context, graph)
    assert codes(found) == [("s1", "FormatUnsupported"), ("s2", "ProcessParameterInvalid")]
    assert "JPEG2000" in found[0]["message"] and "'colour'" in found[1]["message"]


# --- load_collection dry run ------------------------------------------------------------------


@pytest.mark.parametrize("overrides, fragment", [
    ({"temporal_extent": ["2022-06-10", "2022-06-01"]}, "the interval is empty"),
    ({"spatial_extent": {"west": 0, "south": 0, "east": 1, "north": 1}}, "lies outside collection"),
    ({"temporal_extent": ["2021-01-01", "2021-02-01"]}, "no data"),
    ({"spatial_extent": {**AREA, "crs": "EPSG:0"}}, "not a valid EPSG code"),
])
def test_extents(make_context, overrides, fragment):
    (error,) = validate(make_context, {"l": load(**overrides, result=True)})
    assert error["code"] == "ProcessParameterInvalid" and fragment in error["message"], error


def test_other_collection_and_common_band_names(make_context):
    graph = {"s2": load(bands=["red", "nir"]),
             "dem": node("load_collection", id=DEMO_DEM_COLLECTION, spatial_extent=AREA, temporal_extent=None),
             "m": node("merge_cubes", cube1=ref("s2"), cube2=ref("dem"), result=True)}
    assert validate(make_context, graph) == []


def test_without_a_catalog_collections_are_not_checked(implementations):
    context = ValidationContext(predefined=lambda pid: implementations.spec(pid) if pid in implementations else None)
    assert validate_process({"process_graph": {"l": load(id="ANYTHING", result=True)}}, context) == []


# --- no pixels, speed, no side effects --------------------------------------------------------


def test_reads_no_pixels(make_context, monkeypatch):
    """odc.stac.load (the loader's only pixel read) and rasterio.open are never called."""
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise AssertionError("pixels read during validation")

    monkeypatch.setattr(odc.stac, "load", forbidden)
    monkeypatch.setattr(rasterio, "open", forbidden)
    assert validate(make_context, ndvi_graph()) == []
    assert calls == []


def test_works_on_a_catalog_without_any_pixel_files(make_context, catalog_json, tmp_path):
    """No mock: a copy of the demo catalog with every COG removed still validates (and still finds errors)."""
    copy_dir = tmp_path / "catalog"
    shutil.copytree(catalog_json.parent, copy_dir, ignore=shutil.ignore_patterns("*.tif"))
    assert not list(copy_dir.rglob("*.tif")) and list(catalog_json.parent.rglob("*.tif"))
    context = make_context(collections=make_catalog(copy_dir / "catalog.json"))
    assert validate_process({"process_graph": ndvi_graph()}, context) == []
    bad = {"l": load(temporal_extent=["2021-01-01", "2021-02-01"], result=True)}
    assert codes(validate_process({"process_graph": bad}, context)) == [("l", "ProcessParameterInvalid")]


def test_is_fast(make_context):
    validate(make_context, ndvi_graph())  # warm the collection metadata cache
    started = time.perf_counter()
    for _ in range(10):
        assert validate(make_context, ndvi_graph()) == []
    per_run = (time.perf_counter() - started) / 10
    assert per_run < 0.25, per_run  # ~10 ms here: item search over the static catalog, no pixels


def test_the_process_is_not_modified(make_context):
    graph = {"a": {"process_id": "pi", "result": True}}  # no "arguments": Graph.parse would add them
    before = copy.deepcopy(graph)
    assert validate(make_context, graph) == []
    assert graph == before


def test_deep_nesting_is_refused_not_crashing(make_context):
    graph = {"a": node("pi", result=True)}
    for _ in range(80):
        graph = {"a": node("array_apply", data=[1], process={"process_graph": graph}, result=True)}
    found = validate(make_context, graph)
    assert codes(found)[0][1] == "ProcessGraphInvalid" and "nested more than" in found[0]["message"]
