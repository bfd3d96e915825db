"""One seam for evaluation: every read of "who matches" (counts, previews, charts, overlap) goes through here.

    evaluator_for(db)        the backend that answers for this database now (memory when the contacts fit the
                             setting `preview_memory_max_contacts`, else SQL); `backend="name"` forces one
    step_sets(conn)          the sets a step's commit writes from, read inside the engine's write transaction:
                             from the snapshot this process holds when it is of the transaction's data, else SQL
    preview_step(...)        a pending step's preview, with the minimum-segment-size masking every page applies
    segment_distributions    a segment's charts (masked when small); all_distributions: every contact's charts
    register_backend(...)    how another backend plugs in, by name
    SparkEvaluator / SparkStepSets   a segment over a Spark source: chosen by the segment's source, never by name

The engine, the pages and the CLI choose nothing: they call these. Backends live in `memory.py` and `sql.py`; the
interface and its values in `base.py`; docs/evaluation.md describes the design.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from .._db import Database
from .._errors import UsageError
from .._segment_rows import segment_row
from .._settings import read_setting
from .._snapshot import cached_snapshot, data_version, load_snapshot
from .._stats import DIMENSIONS, Distribution, mask_small
from .._steps import ActionRequest
from . import memory as _memory
from . import spark as _spark
from . import sql as _sql
from .base import Evaluator, FilterCount, MatchedSet, StepPreview, StepSets
from .memory import MemoryEvaluator, MemoryStepSets
from .spark import SparkEvaluator, SparkStepSets, source_for
from .sql import SqlEvaluator

__all__ = [
    "Backend",
    "Evaluator",
    "FilterCount",
    "MatchedSet",
    "MemoryEvaluator",
    "MemoryStepSets",
    "SparkEvaluator",
    "SparkStepSets",
    "SqlEvaluator",
    "StepPreview",
    "StepSets",
    "all_distributions",
    "backends",
    "clear_caches",
    "evaluator_for",
    "preview_step",
    "register_backend",
    "segment_distributions",
    "source_for",
    "step_sets",
]


@dataclass(frozen=True)
class Backend:
    """A registered backend: its name, how it makes an evaluator, and whether it is tried when none is named."""

    name: str
    # make(db, forced) -> an evaluator, or None when it cannot answer for this database now (too many contacts
    # for memory, a snapshot still building). `forced` is True when the caller named the backend: it should then
    # answer if it can at all (memory builds its snapshot in the caller's thread).
    make: Callable[[Database, bool], Evaluator | None]
    automatic: bool = True
    # The sets a commit writes from, in the engine's write transaction, or None when this backend cannot give them
    # there and now (no snapshot of the data the transaction sees); no callable means the SQL backend's.
    sets: Callable[[Connection], StepSets | None] | None = None


_BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend, *, first: bool = False) -> None:
    """Make a backend available by name; automatic ones are tried in registration order (`first`: before all).

    The SQL backend stays last among the automatic ones: it answers for every database."""
    others = {n: b for n, b in _BACKENDS.items() if n != backend.name}
    ordered = {backend.name: backend, **others} if first else {**others, backend.name: backend}
    _BACKENDS.clear()
    _BACKENDS.update(ordered)


def backends() -> tuple[str, ...]:
    """The registered backends' names, in the order they are tried."""
    return tuple(_BACKENDS)


def _memory_backend(db: Database, forced: bool) -> Evaluator | None:
    if forced:
        snap = load_snapshot(db, wait=True)
    else:
        with db.read() as conn:
            limit = read_setting(conn, "preview_memory_max_contacts")
        # None above the limit, or while a large snapshot builds in the background (SQL answers meanwhile).
        snap = load_snapshot(db, max_contacts=limit)
    return MemoryEvaluator(db, snap) if snap is not None else None


def _sql_backend(db: Database, forced: bool) -> Evaluator | None:
    return SqlEvaluator(db)


def _memory_sets(conn: Connection) -> StepSets | None:
    url = conn.get_execution_options().get("segcore_db_url")
    if url is None:
        return None
    # Only a snapshot already in memory, and only of exactly the data this transaction sees: a write never waits
    # for a snapshot to load. SQLite's write transaction excludes every other writer; on PostgreSQL an import that
    # commits meanwhile is ordered after this step, whose ids all exist (contacts are never deleted).
    snap = cached_snapshot(url, data_version(conn))
    return MemoryStepSets(conn, snap, url) if snap is not None else None


register_backend(Backend("memory", _memory_backend, sets=_memory_sets))
register_backend(Backend("sql", _sql_backend))


def evaluator_for(
    db: Database, *, backend: str | None = None, segment: str | None = None, source: str | None = None
) -> Evaluator:
    """The evaluator that answers for `db`: Spark for a `source` or a `segment` built over one (its contacts live
    there), else the named `backend` (tests, benchmarks), else the first automatic backend that can (memory while
    the contacts fit, then SQL)."""
    if segment is not None and source is None:
        with db.read() as conn:
            source = segment_row(conn, segment).source
    if source is not None:
        return SparkEvaluator(db, source)
    if backend is not None:
        found = _BACKENDS.get(backend)
        if found is None:
            raise UsageError(f"unknown evaluation backend {backend!r}; use one of {', '.join(_BACKENDS)}")
        evaluator = found.make(db, True)
        if evaluator is None:
            raise UsageError(f"the {backend} backend cannot evaluate this database")
        return evaluator
    for b in _BACKENDS.values():
        if b.automatic:
            evaluator = b.make(db, False)
            if evaluator is not None:
                return evaluator
    return SqlEvaluator(db)


def step_sets(conn: Connection, *, backend: str | None = None, source: str | None = None) -> StepSets:
    """The sets a step's commit writes from, read in the engine's write transaction `conn`.

    Writes stay in the application database with their transaction. For a segment over a `source`, Spark computes
    who the step adds or removes and only their ids come back here. Otherwise the first backend (the named one, or
    the automatic ones in order) whose `sets` can answer now: memory when this process holds the snapshot of the
    data `conn` sees, which finds the changed ids with numpy instead of scanning the contacts again; else SQL."""
    if source is not None:
        return SparkStepSets(conn, source)
    if backend is not None:
        candidates = [_BACKENDS[backend]] if backend in _BACKENDS else []
    else:
        candidates = [b for b in _BACKENDS.values() if b.automatic]
    for b in candidates:
        if b.sets is not None and (sets := b.sets(conn)) is not None:
            return sets
    return SqlEvaluator(conn=conn)


def clear_caches() -> None:
    """Forget every backend's cached member masks and charts (tests that reset a database in place)."""
    _memory.clear_caches()
    _sql.clear_caches()
    _spark.clear_caches()


# ------------------------------------------------------------------------------------------------ what pages call


def _masked(dists: dict[str, Distribution], size: int, minimum: int) -> dict[str, Distribution]:
    # SPEC §3: a segment under the minimum size shows no bucket smaller than the minimum.
    if size >= minimum or size == 0:
        return dists
    return {d: mask_small(v, minimum) for d, v in dists.items()}


def _minimum(db: Database) -> int:
    with db.read() as conn:
        return int(read_setting(conn, "minimum_segment_size"))


def preview_step(
    db: Database,
    no: str,
    request: ActionRequest,
    *,
    today: dt.date | None = None,
    dimensions: Sequence[str] = tuple(DIMENSIONS),
    sample: int = 20,
    backend: str | None = None,
) -> StepPreview:
    """Preview a pending step; `backend` forces one by name (tests and benchmarks), else `evaluator_for` decides.

    The charts of a side (now / after) whose size is under the minimum segment size hide their small buckets."""
    today = today or dt.date.today()
    evaluator = evaluator_for(db, backend=backend, segment=no)
    result = evaluator.preview_step(no, request, today=today, dimensions=dimensions, sample=sample)
    c = result.counts
    if not dimensions:
        return result
    minimum = _minimum(db)
    if min(c.size_before, c.size_after) < minimum:
        result = replace(
            result,
            before=_masked(result.before, c.size_before, minimum),
            after=_masked(result.after, c.size_after, minimum),
        )
    return result


def segment_distributions(
    db: Database, no: str, *, today: dt.date | None = None, dimensions: Sequence[str] = tuple(DIMENSIONS)
) -> dict[str, Distribution]:
    """The chart distributions of a segment's current members; a segment under the minimum size gets its small
    buckets hidden (see `mask_small`)."""
    today = today or dt.date.today()
    with db.read() as conn:
        size = int(segment_row(conn, no).size)
        minimum = int(read_setting(conn, "minimum_segment_size"))
    dists = evaluator_for(db, segment=no).segment_distributions(no, today=today, dimensions=tuple(dimensions))
    return _masked(dists, size, minimum)


def all_distributions(
    db: Database,
    *,
    today: dt.date | None = None,
    dimensions: Sequence[str] = tuple(DIMENSIONS),
    source: str | None = None,
) -> dict[str, Distribution]:
    """The chart distributions of all contacts (never masked), the reference of a segment's composition: those of
    the application database, or of `source`."""
    evaluator = evaluator_for(db, source=source)
    return evaluator.all_distributions(today=today or dt.date.today(), dimensions=tuple(dimensions))
