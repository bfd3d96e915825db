"""Spreading numpy work over the machine's cores: numpy's loops (comparisons, gathers, boolean indexing,
`bincount`) and Arrow's kernels release the GIL, so plain threads run them side by side.

Used by the in-memory snapshot's scans and charts (`_fast_eval`, `evaluation/memory`). Below `MIN_ROWS` rows the
hand-off to a thread costs more than it saves, and work already running on a pool thread never waits for the pool
again (two workers each waiting for a free worker would wait for ever).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["MIN_ROWS", "chunks", "run_all", "thread_count", "threads"]

T = TypeVar("T")

# Measured on the 2-core benchmark machine: at 10M contacts two threads halve a scan; at 100k they gain nothing.
MIN_ROWS = 1_000_000
# More threads than this gain nothing on a memory-bound scan and would take every core of a shared server.
_MAX_THREADS = 4

_state = threading.local()
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_threads = max(1, min(_MAX_THREADS, os.cpu_count() or 1))
_min_rows = MIN_ROWS


def thread_count() -> int:
    """How many threads a large scan uses now."""
    return _threads


@contextmanager
def threads(count: int, *, min_rows: int | None = None) -> Iterator[None]:
    """Use `count` threads (and split from `min_rows` rows) inside the block: tests compare 1 with several, and
    force splitting on small data; benchmarks compare the two. Process-wide: not for concurrent callers."""
    global _threads, _min_rows
    old = (_threads, _min_rows)
    _threads, _min_rows = max(1, count), MIN_ROWS if min_rows is None else max(1, min_rows)
    try:
        yield
    finally:
        _threads, _min_rows = old


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or getattr(_pool, "_max_workers", 0) < _threads:
            _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="segcore-scan",
                                       initializer=_mark_worker)  # fmt: skip
        return _pool


def _mark_worker() -> None:
    _state.worker = True


def _parallel() -> bool:
    return _threads > 1 and not getattr(_state, "worker", False)


def chunks(n: int) -> list[tuple[int, int]]:
    """Row ranges [lo, hi) covering 0..n: one per thread from `min_rows` rows, else one."""
    parts = _threads if _parallel() and n >= _min_rows else 1
    edges = [n * i // parts for i in range(parts + 1)]
    return [(edges[i], edges[i + 1]) for i in range(parts)]


def run_all(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Each task's result, in order: shared out over the threads when there are several tasks and threads to run
    them (the caller's thread works too instead of waiting idle), else run here one after the other."""
    if len(tasks) < 2 or not _parallel():
        return [task() for task in tasks]
    results: list[Any] = [None] * len(tasks)
    order = iter(range(len(tasks)))
    take = threading.Lock()

    def drain() -> None:
        was = getattr(_state, "worker", False)
        _state.worker = True  # a task that splits again runs its parts itself
        try:
            while True:
                with take:
                    i = next(order, None)
                if i is None:
                    return
                results[i] = tasks[i]()
        finally:
            _state.worker = was

    pool = _executor()
    helpers = [pool.submit(drain) for _ in range(min(_threads, len(tasks)) - 1)]
    drain()
    for h in helpers:
        h.result()  # re-raises a task's exception here
    return results
