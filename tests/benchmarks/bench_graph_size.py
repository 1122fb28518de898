"""Graph-size scaling: evaluation overhead of long arithmetic chains (issue goal: 1,000 nodes < 1 s).

Run: .venv/bin/python tests/benchmarks/bench_graph_size.py  — prints the median of 5 runs per size.
"""

from __future__ import annotations

import statistics
import time

from backend.processing.engine.executor import Executor, RunContext
from backend.processing.engine.graph import Graph
from backend.processing.process_registry import ProcessRegistry
from backend.processing.processes import build_implementations


def chain(n: int) -> dict:
    graph = {"n0": {"process_id": "add", "arguments": {"x": 0, "y": 1}}}
    for i in range(1, n):
        graph[f"n{i}"] = {"process_id": "add", "arguments": {"x": {"from_node": f"n{i - 1}"}, "y": 1}}
    graph[f"n{n - 1}"]["result"] = True
    return graph


def main() -> None:
    implementations = build_implementations(ProcessRegistry())
    print("| nodes | parse + evaluate, median of 5 (s) | per node (µs) |\n|---:|---:|---:|")
    for n in (100, 1000, 10_000):
        graph, timings = chain(n), []
        for _ in range(5):
            start = time.perf_counter()
            assert Executor(implementations, RunContext()).run(Graph.parse(graph), {}) == n
            timings.append(time.perf_counter() - start)
        median = statistics.median(timings)
        print(f"| {n} | {median:.4f} | {median / n * 1e6:.1f} |")


if __name__ == "__main__":
    main()
