"""pytest plugin: work around bugs of the *installed* openeo-test-suite 0.2.2 (PyPI).

Always applied by conformance/run.py (unless ``--no-suite-workarounds``):

**WP4 payload paths.**  ``compliance_util._guess_root()`` first tries
``<package>/../../assets/openeo-api`` (right in a git checkout of the suite, where that is
an absolute path to the checkout's ``assets``), and, for an installed package, falls back
to the *relative* path ``./assets/openeo-api``.  ``load_payloads_from_directory()`` then
joins the directory with the paths that ``Path(directory).glob("*.json")`` yields, which
already contain the directory: with a relative directory the result is
``src/.../put_process_graphs/src/.../put_process_graphs/put_process_graphs_1.json`` and
every WP4 test that reads a payload fails with ``FileNotFoundError`` before it sends a
request.  (With an absolute directory ``os.path.join`` keeps the second, absolute path,
which is why the bug does not show in the suite's own CI.)  Fix: make the root absolute.

**WP5 process tests** (``tests/processes/processing/test_example.py`` with ``--runner http``), three
defects that make tests fail before a request is sent, or send something else than the test says:

* ``$ref`` paths.  Test arguments such as ``{"$ref": "assets/xyt-minimal-float.json5"}`` are relative
  to the test file ``<processes>/tests/<id>.json5``, but ``_load_ref()`` resolves them against the
  *spec* file ``<processes>/<id>.json``: ``RuntimeError: Failed to load external reference``.  Fix:
  resolve against the tests directory when the file is not next to the spec.  (All of these are data
  cubes, which the HTTP runner does not encode: the tests are then skipped as the runner intends.)
* Non-JSON values.  ``ProcessTestRunner.is_json_only()`` documents that a JSON-only runner (HTTP)
  *skips* every test that contains NaN or ±Infinity; ``check_non_json_values()`` raises ``ValueError``
  outside the ``try`` that turns ``NotImplementedError`` into a skip, so the tests fail instead.  Fix:
  raise ``NotImplementedError`` (a skip), and skip the same way when the expected result contains such
  values (JSON cannot carry them in a response either: NaN and ±Infinity are written as ``null``).
* Callbacks.  ``Http`` does not override ``ProcessTestRunner.encode_process_graph()``, which returns
  ``None``: every child process (``array_apply``'s ``process``, ...) was sent as ``null``.  Fix: send
  the process object as written in the test (for HTTP the JSON is the encoding).

**WP4 job waits.**  ``wait_job_statuses()`` polls ``GET /jobs/{id}`` once a second until every job
has one of the awaited statuses, and otherwise until its timeout (10 s after every start in
``post_start_jobs()``, 160 s for ``finished`` in ``test_GET_jobs_job_id_results``, 120 s for ``running``
in ``test_DELETE_jobs_job_id_results``); the tests ignore its result and go on either way.  The suite's
job (``post_jobs_1.json``) loads ``CGLS_SSM_1KM``, which most back-ends do not have: the jobs end in
``error`` within a second or two, and the run spent over five minutes waiting for statuses that a job in
``error``, ``finished`` or ``canceled`` cannot reach any more (nothing restarts it during the wait).  Fix:
stop waiting (return False, as at the timeout) once every job that lacks an awaited status is in one of
these final statuses, and poll every 0.25 s.  Every test sends the same requests in the same job states
as without the fix, only sooner.

Only with ``--corrected-openapi-validation`` (opt-in, off by default; the results then
say so), two defects of the WP4 response validation that make correct responses fail:

1. The openEO API document is OpenAPI **3.0.2**, but ``test_endpoint()`` validates with
   openapi-core's ``V31ResponseValidator``.  OpenAPI 3.1 dropped ``nullable: true``, so
   every ``null`` the 3.0 document allows is rejected (open-ended temporal extents
   ``[["2020-01-01T00:00:00Z", null]]``, ``null`` process arguments in examples...).
   Fix: validate with ``V30ResponseValidator``.
2. ``components.schemas.process_json_schema`` has ``oneOf: [Generic (empty schema),
   process_graph_json_schema, datacube_json_schema]``: all three accept an ordinary
   schema such as ``{"type": "string"}``, so ``oneOf`` (exactly one) fails for nearly
   every process parameter, return value and file-format parameter
   (Open-EO/openeo-api#600).  The same holds for collection ``summaries`` values,
   ``oneOf: [array, collection_summary_stats, json_schema]``: every range
   ``{"minimum": 0, "maximum": 100}`` is also a valid ``json_schema`` object, so every
   range summary fails.  Fix: ``anyOf`` for both (the alternatives are overlapping
   refinements, as in STAC's own JSON schema, not exclusive choices).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

PROCESS_TESTS_MODULE = "processes.processing.test_example"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance-suite-workarounds", "openeo-test-suite workarounds")
    group.addoption(
        "--corrected-openapi-validation",
        action="store_true",
        default=False,
        help="WP4: validate responses as OpenAPI 3.0 (what the openEO API document is) and read "
        "process_json_schema's oneOf as anyOf (Open-EO/openeo-api#600).",
    )


def _absolute_asset_paths(compliance_util) -> None:
    original = compliance_util._guess_root
    if getattr(original, "_conformance_absolute", False):
        return

    def _guess_root_absolute():
        return original().resolve()

    _guess_root_absolute._conformance_absolute = True
    compliance_util._guess_root = _guess_root_absolute


# a job in one of these statuses stays there unless someone starts it again (none of the tests does
# while it waits); "created" is not final: a job is "created" for a moment after some status changes
FINAL_JOB_STATUSES = frozenset({"finished", "error", "canceled"})
JOB_POLL_INTERVAL = 0.25


def _job_waits_end_at_final_statuses(compliance_util) -> None:
    """wait_job_statuses() that stops when no job can reach an awaited status any more."""
    if getattr(compliance_util.wait_job_statuses, "_conformance_patched", False):
        return

    def wait_job_statuses(base_url, bearer_token, job_ids, job_statuses, timeout=10):
        end_time = time.time() + timeout
        while time.time() < end_time:
            statuses = [compliance_util.get_batch_job_status(base_url=base_url, bearer_token=bearer_token,
                                                             job_id=job_id) for job_id in job_ids]
            if all(status in job_statuses for status in statuses):
                return True
            if all(status in job_statuses or status in FINAL_JOB_STATUSES for status in statuses):
                return False  # what the original returns at its timeout, without waiting for it
            time.sleep(JOB_POLL_INTERVAL)
        return False

    wait_job_statuses._conformance_patched = True
    # test_compliance.py calls it as conformance_util.wait_job_statuses, post_start_jobs() as a module
    # global: both look the name up in compliance_util when they run
    compliance_util.wait_job_statuses = wait_job_statuses


def _corrected_openapi_validation(compliance_util) -> None:
    from openapi_core import V30ResponseValidator

    # test_endpoint() passes the class it imported by this name to validate_response()
    compliance_util.V31ResponseValidator = V30ResponseValidator

    original_adjust_server = compliance_util.adjust_server
    if getattr(original_adjust_server, "_conformance_corrected", False):
        return

    def adjust_server(path_to_file, endpoint):
        data = original_adjust_server(path_to_file=path_to_file, endpoint=endpoint)
        schema = data.get("components", {}).get("schemas", {}).get("process_json_schema", {})
        if "oneOf" in schema:
            schema["anyOf"] = schema.pop("oneOf")
        _summaries_any_of(data)
        return data

    adjust_server._conformance_corrected = True
    compliance_util.adjust_server = adjust_server


_SUMMARY_STATS = {"$ref": "#/components/schemas/collection_summary_stats"}


def _summaries_any_of(node) -> None:
    """oneOf -> anyOf wherever the alternatives include collection_summary_stats."""
    if isinstance(node, dict):
        if isinstance(node.get("oneOf"), list) and _SUMMARY_STATS in node["oneOf"]:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _summaries_any_of(value)
    elif isinstance(node, list):
        for value in node:
            _summaries_any_of(value)


def _http_runner_sends_callbacks() -> None:
    from openeo_test_suite.lib.process_runner.http import Http

    def encode_process_graph(self, process, parent_process_id=None, parent_parameter=None):
        return process

    Http.encode_process_graph = encode_process_graph


def _process_test_fixes(module) -> None:
    """Patch the WP5 test module's helpers (module globals, looked up when a test runs)."""
    if getattr(module, "_conformance_patched", False):
        return
    module._conformance_patched = True
    load_ref, check_non_json, check_return_value = (module._load_ref, module.check_non_json_values,
                                                    module.check_return_value)

    def _load_ref_from_tests_dir(ref, file):
        file = Path(file)
        if not (file.parent / ref).exists():
            for tests_dir in (file.parent / "tests", file.parent.parent / "tests"):
                if (tests_dir / ref).exists():
                    return load_ref(ref, tests_dir / f"{file.stem}.json5")
        return load_ref(ref, file)

    def _check_non_json_values_skips(value):
        try:
            check_non_json(value)
        except ValueError as exc:  # NotImplementedError: the test skips itself
            raise NotImplementedError(f"{exc} (JSON-only runner: test skipped)") from exc

    def _check_return_value_json(example, result, connection, file):
        if connection.is_json_only():
            expected = example.get("returns")
            if isinstance(expected, dict) and "$ref" in expected:
                expected = _load_ref_from_tests_dir(expected["$ref"], file)
            try:
                check_non_json(expected)
            except ValueError as exc:
                pytest.skip(f"expected result: {exc} (JSON-only runner: test skipped)")
        return check_return_value(example, result, connection, file)

    module._load_ref = _load_ref_from_tests_dir
    module.check_non_json_values = _check_non_json_values_skips
    module.check_return_value = _check_return_value_json


def pytest_collection_modifyitems(session, config, items) -> None:
    for module in {getattr(item, "module", None) for item in items}:
        if module is not None and module.__name__.endswith(PROCESS_TESTS_MODULE):
            _process_test_fixes(module)


def pytest_configure(config: pytest.Config) -> None:
    import openeo_test_suite.lib.compliance_util as compliance_util

    _absolute_asset_paths(compliance_util)
    _job_waits_end_at_final_statuses(compliance_util)
    _http_runner_sends_callbacks()
    if config.getoption("--corrected-openapi-validation"):
        _corrected_openapi_validation(compliance_util)


def pytest_report_header(config: pytest.Config):
    lines = ["suite workaround: absolute WP4 asset paths (openeo-test-suite 0.2.2 payload path bug)",
             "suite workaround: WP4 job waits end when no job can reach the awaited status any more",
             "suite workaround: WP5 $ref paths, non-JSON values skipped, HTTP runner sends callbacks"]
    if config.getoption("--corrected-openapi-validation"):
        lines.append("suite workaround: WP4 responses validated as OpenAPI 3.0, process_json_schema oneOf->anyOf")
    return lines
