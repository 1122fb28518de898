"""Limits of synchronous processing: a cube-size cap and a wall-clock deadline, both with a clear
openEO error that says to use a batch job instead."""

from __future__ import annotations

import threading
import time

from dask.callbacks import Callback as DaskCallback

from apicore import errors

BATCH_HINT = "Use a batch job (POST /jobs) for requests of this size."


def check_cube_size(cube, max_pixels: int | None, process_id: str) -> None:
    """Refuse a lazy cube larger than ``max_pixels`` values before anything is read."""
    if max_pixels is not None and cube.size > max_pixels:
        raise errors.ProcessGraphComplexity(
            f"{process_id} would load {cube.size:,} values ({dict(cube.sizes)}), more than the "
            f"{max_pixels:,} allowed for synchronous processing. Reduce the extent, dates or bands. {BATCH_HINT}")


class Deadline(DaskCallback):
    """Stops a Dask computation at the deadline: raised before the next task starts. Registered callbacks
    are global; this one only watches the thread (request) that created it, where Dask's local
    scheduler calls it."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.thread = threading.get_ident()

    def _pretask(self, key, dsk, state):
        if threading.get_ident() == self.thread and time.monotonic() > self.deadline:
            raise errors.ProcessGraphComplexity(
                f"The computation took longer than the {self.seconds:g} s allowed for synchronous "
                f"processing. {BATCH_HINT}")
