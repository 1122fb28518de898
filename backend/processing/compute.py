"""Where the Dask computations of one request (or batch job) run: its threads, deadline and meter.

Dask's own ways to configure a computation are process-wide: ``dask.config.set`` changes every
thread's settings, and callbacks registered with ``with Callback()`` live in a global set that the
threaded scheduler swaps out while it computes. Overlapping requests in one web worker (gunicorn
gthread) then lose or inherit each other's deadline, meter and thread count. So:

    with computing(ComputeScope(threads=2, pool=pool, deadline=deadline, callbacks=[meter])):
        ...  # every compute here: .compute(), .values, writers storing through Dask, ...

:func:`scheduler` is installed once as Dask's default scheduler (the first time a scope is entered),
so computes without arguments, in our code and in libraries, land there. It reads the scope of the
calling context (a ContextVar) and runs the graph with Dask's local scheduler on the scope's pool, at
most ``threads`` tasks at once, passing the scope's callbacks explicitly (``callbacks=``: the global
set is never touched). Outside any scope a compute runs as Dask would run it without our default.

A compute started inside one of the scope's own tasks (nested) runs synchronously in that task's
thread with the deadline only: it must not wait for threads of the pool its caller occupies (that can
deadlock), and its time is already counted in the outer task.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import dask
import dask.threaded
from dask.callbacks import Callback, normalize_callback
from dask.local import get_async, get_sync


@dataclass
class ComputeScope:
    """The settings of one request's or job's computations. ``pool``: the executor running its tasks
    (None: one of ``threads`` threads for the duration of :func:`computing`). ``deadline``: an object
    with ``check(stage)``, also called by stages that are no Dask tasks (item search, grid); it is
    checked before every task. ``callbacks``: Dask callbacks of the top-level computes (meters).
    ``drain``: after a failed compute, wait for its running tasks (a pool reused by the next request
    must be idle when handed on); a pool of the scope's own is shut down instead."""

    threads: int
    pool: Executor | None = None
    deadline: Any = None
    callbacks: Sequence[Callback] = field(default_factory=tuple)
    drain: bool = True

    def dask_callbacks(self, nested: bool) -> list[tuple]:
        chosen = [self.deadline] if self.deadline is not None else []
        if not nested:
            chosen.extend(self.callbacks)
        return [normalize_callback(c) for c in chosen]


_scope: contextvars.ContextVar[ComputeScope | None] = contextvars.ContextVar("compute_scope", default=None)
_in_task: contextvars.ContextVar[bool] = contextvars.ContextVar("compute_in_task", default=False)
_install_lock = threading.Lock()


def current_scope() -> ComputeScope | None:
    return _scope.get()


@contextmanager
def computing(scope: ComputeScope) -> Iterator[ComputeScope]:
    """Run the enclosed code's Dask computations under ``scope`` (this thread/context only)."""
    install()
    own_pool = None
    if scope.pool is None:
        own_pool = ThreadPoolExecutor(scope.threads, thread_name_prefix="compute")
        scope = replace(scope, pool=own_pool, drain=False)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        if own_pool is not None:
            # after a failure some tasks may still run: they finish on their own, nothing waits for them
            own_pool.shutdown(wait=False, cancel_futures=True)


def install() -> None:
    """Make :func:`scheduler` Dask's default (idempotent; again if something replaced it)."""
    if dask.config.get("scheduler", None) is not scheduler:
        with _install_lock:
            dask.config.set(scheduler=scheduler)


def scheduler(dsk, keys, **kwargs) -> Any:
    """Dask's ``get``: the graph on the current scope's pool with its callbacks (see module doc)."""
    scope = _scope.get()
    if scope is None:
        return _unscoped(dsk, keys, **kwargs)
    kwargs.pop("num_workers", None)  # the scope decides, never a caller or the global config
    kwargs.pop("pool", None)
    extra = [normalize_callback(c) for c in kwargs.pop("callbacks", None) or ()]
    if _in_task.get():
        return get_sync(dsk, keys, callbacks=scope.dask_callbacks(nested=True) + extra, **kwargs)
    return _threaded(scope, dsk, keys, extra, kwargs)


def _threaded(scope: ComputeScope, dsk, keys, extra: list, kwargs: dict) -> Any:
    pool = scope.pool  # set by computing()
    running: set[Future] = set()  # submitted and not done (done ones are dropped: they hold results)
    lock = threading.Lock()

    def forget(future: Future) -> None:
        with lock:
            running.discard(future)

    def submit(fn, *args, **kw):
        context = contextvars.copy_context()  # the scope (and other context) travel into the task
        future = pool.submit(context.run, _as_task, fn, *args, **kw)
        with lock:
            running.add(future)
        future.add_done_callback(forget)
        return future

    try:
        return get_async(submit, scope.threads, dsk, keys, callbacks=scope.dask_callbacks(nested=False) + extra,
                         get_id=threading.get_ident, pack_exception=dask.threaded.pack_exception, **kwargs)
    except BaseException:
        if not scope.drain:
            raise
        # Stopped (deadline, error): tasks already running finish first, so the pool is idle again when the
        # request gives its slot back, and the next request's tasks do not queue behind them.
        with lock:
            left = list(running)
        for future in left:
            future.cancel()
        wait(left)
        raise


def _as_task(fn, *args, **kwargs):
    _in_task.set(True)  # set in the task's copied context only
    return fn(*args, **kwargs)


def _unscoped(dsk, keys, **kwargs) -> Any:
    """What Dask does without a configured scheduler: a distributed client if one is current (e.g.
    inside a cluster worker), else the threaded scheduler."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return dask.threaded.get(dsk, keys, **kwargs)
    return client.get(dsk, keys, **kwargs)
