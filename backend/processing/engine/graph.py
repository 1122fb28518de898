"""A process graph checked once: nodes, the one result node, and an evaluation order.

The order is computed iteratively (no recursion), so chains of thousands of nodes work, and cycles
are reported with the nodes involved.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

from apicore import errors

NODE_PROCESS_ID = re.compile(r"^\w+$")


@dataclass(frozen=True)
class Graph:
    nodes: dict[str, dict]
    order: tuple[str, ...]  # every node needed for the result, each after the nodes it reads
    result: str

    @classmethod
    def parse(cls, process_graph: Any, where: str = "the process graph") -> Graph:
        if not isinstance(process_graph, dict) or not process_graph:
            raise errors.ProcessGraphMissing(f"{where} has no nodes: send a non-empty 'process_graph' object.")
        for node_id, node in process_graph.items():
            _check_node(node_id, node, where)
        results = [node_id for node_id, node in process_graph.items() if node.get("result") is True]
        if len(results) != 1:
            found = "no node" if not results else f"{len(results)} nodes ({', '.join(sorted(results))})"
            raise errors.ProcessGraphInvalid(
                f"{where} must have exactly one node with \"result\": true; {found} has it.")
        dependencies = {node_id: set(_node_references(node["arguments"], node_id, where))
                        for node_id, node in process_graph.items()}
        for node_id, refs in dependencies.items():
            unknown = {ref for ref in refs if ref not in process_graph}
            if unknown:
                raise errors.ProcessGraphInvalid(
                    f"Node '{node_id}' in {where} refers to node(s) {sorted(unknown)}, which do not exist.")
        return cls(process_graph, _evaluation_order(dependencies, results[0], where), results[0])


def _check_node(node_id: str, node: Any, where: str) -> None:
    if not isinstance(node, dict):
        raise errors.ProcessGraphInvalid(f"Node '{node_id}' in {where} must be an object.")
    process_id = node.get("process_id")
    if not isinstance(process_id, str) or not NODE_PROCESS_ID.match(process_id):
        raise errors.ProcessGraphInvalid(f"Node '{node_id}' in {where} needs a 'process_id' "
                                         "(letters, digits, underscores).")
    if not isinstance(node.get("arguments", {}), dict):
        raise errors.ProcessGraphInvalid(f"The 'arguments' of node '{node_id}' in {where} must be an object.")
    node.setdefault("arguments", {})


def _node_references(value: Any, node_id: str, where: str) -> Iterator[str]:
    """``from_node`` references in an argument value, not descending into callbacks (own scope).
    A reference whose target is not a string (``{"from_node": 5}``) is refused here: it can never resolve."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if len(item) == 1 and ("from_node" in item or "from_parameter" in item):
                key, target = next(iter(item.items()))
                if not isinstance(target, str):
                    kind = "node" if key == "from_node" else "parameter"
                    raise errors.ProcessGraphInvalid(
                        f"Node '{node_id}' in {where} has {{\"{key}\": {target!r}}}: name the {kind} by its id, "
                        "a string.")
                if key == "from_node":
                    yield target
            elif "process_graph" in item and len(item) == 1:
                continue
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _evaluation_order(dependencies: dict[str, set[str]], result: str, where: str) -> tuple[str, ...]:
    """Kahn's algorithm over the ancestors of the result node."""
    needed, queue = {result}, deque([result])
    while queue:
        for dependency in dependencies[queue.popleft()]:
            if dependency not in needed:
                needed.add(dependency)
                queue.append(dependency)
    pending = {node: len(dependencies[node]) for node in needed}
    readers: dict[str, list[str]] = {node: [] for node in needed}
    for node in needed:
        for dependency in dependencies[node]:
            readers[dependency].append(node)
    ready = deque(sorted(node for node, count in pending.items() if count == 0))
    order = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for reader in readers[node]:
            pending[reader] -= 1
            if pending[reader] == 0:
                ready.append(reader)
    if len(order) != len(needed):
        cyclic = sorted(node for node, count in pending.items() if count > 0)
        raise errors.ProcessGraphInvalid(f"{where} has a cycle through nodes {cyclic}; "
                                         "a node cannot depend on its own result.")
    return tuple(order)
