"""The process-graph evaluator: the defects of the naive library use, each proven fixed here."""

from __future__ import annotations

import time

import numpy as np
import pytest

from apicore import errors
from backend.processing.engine.executor import Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.processes import build_implementations
from backend.processing.process_registry import ProcessRegistry


@pytest.fixture(scope="module")
def implementations():
    return build_implementations(ProcessRegistry())


def run(implementations, process_graph, parameters=None, udps=None):
    context = RunContext(udp_lookup=lambda pid: (udps or {}).get(pid))
    return Executor(implementations, context).run(Graph.parse(process_graph), parameters or {})


def node(process_id, result=False, **arguments):
    return {"process_id": process_id, "arguments": arguments, **({"result": True} if result else {})}


def test_arithmetic(implementations):
    graph = {"a": node("add", x=1, y=2), "m": node("multiply", x={"from_node": "a"}, y=4, result=True)}
    assert run(implementations, graph) == 12


def test_callbacks_are_evaluated_afresh_for_every_invocation(implementations):
    """pg-parser reuses a callback's first result; array_apply must give a different value per element."""
    callback = {"process_graph": {
        "sq": node("multiply", x={"from_parameter": "x"}, y={"from_parameter": "x"}),
        "plus": node("add", x={"from_node": "sq"}, y=1, result=True)}}
    graph = {"apply": node("array_apply", data=[1, 2, 3], process=callback, result=True)}
    assert list(run(implementations, graph)) == [2, 5, 10]


def test_reducer_over_numpy_axis(implementations):
    reducer = {"process_graph": {
        "mean": node("mean", data={"from_parameter": "data"}),
        "double": node("multiply", x={"from_node": "mean"}, y=2, result=True)}}
    data = np.array([[1.0, 3.0], [2.0, np.nan]])
    from backend.processing.engine.executor import Callback

    callback = Callback(Executor(implementations, RunContext()), Graph.parse(reducer["process_graph"]), {})
    reduced = callback(data, axis=1, positional_parameters={"data": 0})
    assert reduced.tolist() == [4.0, 4.0]  # nan ignored; axis reached mean through the callback


def test_graph_parameters_and_missing_parameter(implementations):
    graph = {"a": node("add", x={"from_parameter": "p"}, y=1, result=True)}
    assert run(implementations, graph, {"p": 41}) == 42
    with pytest.raises(errors.ProcessGraphInvalid, match="parameter 'p'"):
        run(implementations, graph)


def test_udp_with_defaults_nested_and_cycle_guard(implementations):
    udps = {
        "plus_n": {"parameters": [{"name": "x", "schema": {}}, {"name": "n", "schema": {}, "default": 10,
                                                                "optional": True}],
                   "process_graph": {"a": node("add", x={"from_parameter": "x"}, y={"from_parameter": "n"},
                                               result=True)}},
        "twice_plus_n": {"parameters": [{"name": "x", "schema": {}}],
                         "process_graph": {"u": node("plus_n", x={"from_parameter": "x"}),
                                           "m": node("multiply", x={"from_node": "u"}, y=2, result=True)}},
        "loop_a": {"process_graph": {"b": node("loop_b", result=True)}},
        "loop_b": {"process_graph": {"a": node("loop_a", result=True)}},
    }
    assert run(implementations, {"u": node("plus_n", x=1, result=True)}, udps=udps) == 11
    assert run(implementations, {"u": node("plus_n", x=1, n=2, result=True)}, udps=udps) == 3
    assert run(implementations, {"u": node("twice_plus_n", x=1, result=True)}, udps=udps) == 22
    with pytest.raises(errors.ProcessGraphInvalid, match="loop_a -> loop_b -> loop_a"):
        run(implementations, {"u": node("loop_a", result=True)}, udps=udps)
    with pytest.raises(errors.ProcessParameterRequired):
        run(implementations, {"u": node("plus_n", result=True)}, udps=udps)


def _chain(n):
    graph = {"n0": node("add", x=0, y=1)}
    for i in range(1, n):
        graph[f"n{i}"] = node("add", x={"from_node": f"n{i - 1}"}, y=1)
    graph[f"n{n - 1}"]["result"] = True
    return graph


def test_long_chain_is_linear(implementations):
    """pg-parser loses references past ~127 chained nodes and rescans the graph per node. Work is
    counted, not timed (timing lives in tests/benchmarks/bench_graph_size.py)."""
    calls = {}
    for n in (1000, 10_000):
        executor = Executor(implementations, RunContext())
        counted = []
        original = executor.call
        executor.call = lambda *args, **kwargs: counted.append(1) or original(*args, **kwargs)
        assert executor.run(Graph.parse(_chain(n)), {}) == n
        calls[n] = len(counted)
    assert calls == {1000: 1000, 10_000: 10_000}  # each node evaluated exactly once, no recursion limit


@pytest.mark.parametrize("graph, message", [
    ({"a": node("add", x=1, y=2)}, "no node"),
    ({"a": node("add", x=1, y=2, result=True), "b": node("add", x=1, y=2, result=True)}, "2 nodes"),
    ({"a": node("add", x={"from_node": "b"}, y=1, result=True), "b": node("add", x={"from_node": "a"}, y=1)},
     "cycle"),
    ({"a": node("add", x={"from_node": "zz"}, y=1, result=True)}, "do not exist"),
    ({"a": {"process_id": "add", "arguments": [], "result": True}}, "must be an object"),
])
def test_invalid_graphs(implementations, graph, message):
    with pytest.raises(errors.ProcessGraphInvalid, match=message):
        run(implementations, graph)


def test_unknown_process_and_arguments(implementations):
    with pytest.raises(errors.ProcessUnsupported):
        run(implementations, {"a": node("no_such_process", result=True)})
    with pytest.raises(errors.ProcessParameterUnsupported):
        run(implementations, {"a": node("add", x=1, y=2, z=3, result=True)})
    with pytest.raises(errors.ProcessParameterRequired):
        run(implementations, {"a": node("add", x=1, result=True)})


def test_division_by_zero_is_nan_or_inf_not_an_error(implementations):
    result = run(implementations, {"d": node("divide", x=np.array([1.0, 0.0]), y=0, result=True)})
    assert np.isinf(result[0]) and np.isnan(result[1])


def test_date_like_strings_stay_strings(implementations):
    graph = {"t": node("text_concat", data=["2020", "2021"], separator="-", result=True)}
    assert run(implementations, graph) == "2020-2021"


def test_two_node_reducer_per_period_is_not_reused(implementations):
    """PITFALLS: pg-parser gave [1, 1, 1] for this (first period's result reused); right is [1, 3, 4.5]."""
    import pandas as pd
    import xarray as xr

    times = pd.to_datetime(["2022-01-10", "2022-02-10", "2022-02-20", "2022-03-05", "2022-03-25"])
    cube = xr.DataArray(np.array([1, 2, 4, 3, 6], dtype="float32").reshape(5, 1, 1, 1),
                        dims=("t", "bands", "y", "x"),
                        coords={"t": times, "bands": ["B1"], "y": [0.5], "x": [0.5]})
    reducer = {"process_graph": {
        "mean": node("mean", data={"from_parameter": "data"}),
        "plus0": node("add", x={"from_node": "mean"}, y=0, result=True)}}
    graph = {"agg": node("aggregate_temporal_period", data={"from_parameter": "cube"}, period="month",
                         reducer=reducer, result=True)}
    result = run(implementations, graph, {"cube": cube})
    assert result.squeeze().values.tolist() == [1.0, 3.0, 4.5]
