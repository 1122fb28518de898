"""Schema fuzzing of an openEO server with schemathesis: generated requests for every operation of the
openEO API's openapi.yaml, sent to a real server, each answer checked for a 5xx status, an undocumented
status code, an undocumented content type and a body that does not match the documented schema.

Generation: schemathesis' Hypothesis strategies, valid (``positive``) and invalid (``negative``) requests
per operation, a fixed number of examples each. The short profile derandomizes Hypothesis (the same
requests on every CI run); the long one draws at random. Findings are collected, not raised, so one run
shows them all; the caller asserts there are none.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.deserialization import deserialize_yaml
from schemathesis.core.errors import UnsupportedSchema
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                status_code_conformance)

from tests.conftest import SHARED_ASSETS

OPENAPI = SHARED_ASSETS / "assets" / "openeo-api" / "openapi.yaml"  # ../shared/conformance-assets/...
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TIMEOUT = 60  # seconds per request: a request that takes longer is a finding, not a hang of the suite

# Operations (method, path) sent only with generated path values, never with the ids of the seeded items,
# and why.
NOT_WITH_SEEDS = {
    # would queue the seeded job for a run on the batch cluster: a job with a generated process graph is
    # refused at start, a valid one would compute; the start itself is covered by the job tests
    ("POST", "/jobs/{job_id}/results"),
}


@dataclass(frozen=True)
class SpecCorrection:
    """A schema of the spec edited before fuzzing because the spec is wrong there, not our answers:
    ``"oneOf -> anyOf"`` renames a keyword, ``"format: uri -> uri-template"`` changes a keyword's value."""

    pointer: str  # JSON pointer of a schema in openapi.yaml
    edit: str
    reason: str

    def apply(self, document: dict) -> None:
        node = document
        for part in self.pointer.lstrip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        before, after = (side.strip() for side in self.edit.split("->"))
        if ":" in before:  # a value
            keyword, value = (side.strip() for side in before.split(":", 1))
            # fails loudly once the spec is fixed: then the correction goes
            assert node.get(keyword) == value, f"{self.pointer}: {keyword} is not {value!r} any more: drop this"
            node[keyword] = after
        else:  # a keyword
            assert before in node, f"{self.pointer} has no {before!r} any more: drop the correction"
            node[after] = node.pop(before)


@dataclass(frozen=True)
class SpecDefect:
    """A narrow exclusion: a finding that is a defect or ambiguity of the openEO spec, not of our code."""

    operation: str  # "GET /jobs/{job_id}"
    failure: str  # class name of the schemathesis failure, e.g. "JsonSchemaError"
    matches: Callable[[Failure, schemathesis.Response], bool]
    reason: str


@dataclass
class Finding:
    operation: str
    mode: str
    failure: str
    title: str
    status: int | None
    message: str
    curl: str

    def __str__(self) -> str:
        return (f"{self.operation} ({self.mode}): {self.failure} {self.title} [status {self.status}]\n"
                f"  {self.message[:600]}\n  {self.curl[:600]}")


@dataclass
class Run:
    """The figures of one fuzzing run against one target."""

    target: str
    requests: Counter = field(default_factory=Counter)  # operation -> requests sent
    operation_seconds: Counter = field(default_factory=Counter)  # operation -> seconds (generation included)
    findings: list[Finding] = field(default_factory=list)
    excluded: Counter = field(default_factory=Counter)  # spec defect reason -> findings excluded
    unsatisfiable: list[str] = field(default_factory=list)  # operation (mode): no (more) case could be generated
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{self.target}: {sum(self.requests.values())} requests over {len(self.requests)} operations "
                 f"in {self.seconds:.1f} s, {len(self.findings)} findings, "
                 f"{sum(self.excluded.values())} excluded as spec defects"]
        lines += [f"  excluded {count}x: {reason}" for reason, count in self.excluded.items()]
        slowest = ", ".join(f"{op} {seconds:.1f} s" for op, seconds in self.operation_seconds.most_common(3))
        lines.append(f"  slowest operations: {slowest}")
        if self.unsatisfiable:
            lines.append(f"  no (more) cases generated for: {', '.join(self.unsatisfiable)}")
        return "\n".join(lines)


def load_schema(corrections: list[SpecCorrection]) -> schemathesis.BaseSchema:
    document = deserialize_yaml(OPENAPI.read_text())  # schemathesis' loader: dates stay strings
    for correction in corrections:
        correction.apply(document)
    return schemathesis.openapi.from_dict(document, config=schemathesis.Config())


def operations(schema) -> list:
    """Every operation of the spec, deletions last (they may remove the seeded items)."""
    found = [result.ok() for result in schema.get_all_operations()]
    return sorted(found, key=lambda op: (op.method.upper() == "DELETE", op.path, op.method))


def label(operation) -> str:
    return f"{operation.method.upper()} {operation.path}"


class Fuzzer:
    """Sends generated requests of every operation to ``url`` (the API root) with ``headers``; operations
    with path parameters are also sent with ``seeds`` (parameter -> value of an existing item)."""

    def __init__(self, target: str, url: str, headers: dict[str, str], seeds: dict[str, str],
                 examples: int, derandomize: bool, spec_defects: list[SpecDefect]):
        self.url = url
        self.headers = headers
        self.seeds = seeds
        self.examples = examples
        self.derandomize = derandomize
        self.spec_defects = spec_defects
        self.session = requests.Session()
        self.run = Run(target)

    def fuzz(self, schema) -> Run:
        started = time.monotonic()
        for operation in operations(schema):
            seeds = self._seeds_for(operation)
            # the spec's own examples first (realistic bodies: process graphs, job and service documents)
            for strategy in operation.get_strategies_from_examples(**({"path_parameters": seeds} if seeds else {})):
                self._fuzz(operation, "examples", strategy, 1)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                self._fuzz(operation, mode.value, operation.as_strategy(generation_mode=mode), self.examples)
                if seeds:
                    strategy = operation.as_strategy(generation_mode=mode, path_parameters=seeds)
                    self._fuzz(operation, mode.value, strategy, self.examples)
        self.run.seconds = time.monotonic() - started
        return self.run

    def _seeds_for(self, operation) -> dict[str, str] | None:
        names = [p.name for p in operation.path_parameters]
        if not names or (operation.method.upper(), operation.path) in NOT_WITH_SEEDS:
            return None
        if not all(name in self.seeds for name in names):
            return None
        return {name: self.seeds[name] for name in names}

    def _fuzz(self, operation, mode: str, strategy, examples: int) -> None:
        started = time.monotonic()

        @settings(max_examples=examples, derandomize=self.derandomize, database=None, deadline=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def send(case):
            self._send(case, mode)

        try:
            send()
        except Unsatisfiable:  # e.g. an operation without parameters has no invalid request
            self.run.unsatisfiable.append(f"{label(operation)} ({mode})")
        except UnsupportedSchema as limit:  # a limit of schemathesis' generator, seen in random runs
            self.run.unsatisfiable.append(f"{label(operation)} ({mode}, more cases: {str(limit)[:120]})")
        self.run.operation_seconds[label(operation)] += time.monotonic() - started

    def _send(self, case, mode: str) -> None:
        operation = label(case.operation)
        self.run.requests[operation] += 1
        try:
            response = case.call(base_url=self.url, headers=self.headers, session=self.session, timeout=TIMEOUT)
        except requests.RequestException as error:
            self.run.findings.append(Finding(operation, mode, type(error).__name__, "no answer", None,
                                             str(error), case.as_curl_command(headers=self.headers,
                                                                             base_url=self.url)))
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=self.headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                self._record(case, mode, failure, response)

    def _record(self, case, mode: str, failure: Failure, response: schemathesis.Response) -> None:
        operation = label(case.operation)
        kind = type(failure).__name__
        for defect in self.spec_defects:
            if defect.operation == operation and defect.failure == kind and defect.matches(failure, response):
                self.run.excluded[defect.reason] += 1
                return
        self.run.findings.append(Finding(operation, mode, kind, failure.title, response.status_code,
                                         failure.message, case.as_curl_command(headers=self.headers,
                                                                              base_url=self.url)))
