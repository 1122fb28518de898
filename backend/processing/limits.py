"""Limits of synchronous processing: a cube-size cap and a wall-clock deadline, both with a clear
openEO error that says to use a batch job instead.

The deadline belongs to one request: it is handed to Dask per computation (``compute.ComputeScope``,
checked before every task) and found by the stages that are no Dask tasks (item search, output grid)
through :func:`check_deadline`, which reads the current request's scope.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from dask.callbacks import Callback as DaskCallback

from apicore import errors
from backend.processing.compute import current_scope

BATCH_HINT = "Use a batch job (POST /jobs) for requests of this size."


def check_values(values: int, sizes: Mapping[str, int], max_pixels: int | None, process_id: str) -> None:
    """Refuse a load of ``values`` values (dimension ``sizes``) above ``max_pixels``."""
    if max_pixels is not None and values > max_pixels:
        raise errors.ProcessGraphComplexity(
            f"{process_id} would load {values:,} values ({dict(sizes)}), more than the "
            f"{max_pixels:,} allowed for synchronous processing. Reduce the extent, dates or bands. {BATCH_HINT}")


def check_cube_size(cube, max_pixels: int | None, process_id: str) -> None:
    """Refuse a lazy cube larger than ``max_pixels`` values before anything is read."""
    check_values(int(cube.size), cube.sizes, max_pixels, process_id)


class Deadline(DaskCallback):
    """A request's time limit: ``check`` raises ProcessGraphComplexity once it has passed. As a Dask
    callback (passed per computation, never registered globally) it stops a computation before its
    next task, and when a task ends after it (a computation whose last tasks all started in time would
    otherwise run past the limit and answer: whether it did depended on the machine's speed)."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def check(self, stage: str | None = None) -> None:
        if time.monotonic() > self.deadline:
            during = f" (stopped during {stage})" if stage else ""
            raise errors.ProcessGraphComplexity(
                f"The computation took longer than the {self.seconds:g} s allowed for synchronous "
                f"processing{during}. {BATCH_HINT}")

    def _start(self, dsk):
        self.check()

    def _pretask(self, key, dsk, state):
        self.check()

    def _posttask(self, key, result, dsk, state, worker_id):
        self.check()


def check_deadline(stage: str) -> None:
    """Stop the current request at its deadline, if it has one; ``stage`` names the work in the message."""
    scope = current_scope()
    if scope is not None and scope.deadline is not None:
        scope.deadline.check(stage)
