"""Preview of a pending step: counts, charts before and after, and samples of who enters or leaves.

`preview_step` is the one function every caller uses (Builder page, CLI `--preview`, benchmarks). It answers from
the in-memory snapshot when the contacts fit (setting `preview_memory_max_contacts`) and pushes the work down to
SQL otherwise, e.g. on a large PostgreSQL database. Both paths give the same numbers; tests hold them equal.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Connection, select

from ._dates import shift_years
from ._db import Database
from ._engine import (
    ActionRequest,
    Preview,
    _count,
    _matched_set,
    _member_ids_of,
    _segment_row,
    _skipped_excluded,
    _step_scan,
)
from ._fast_eval import evaluate
from ._models import Contact, SegmentMember
from ._settings import read_setting
from ._snapshot import EPOCH, NULL_DAY, Snapshot, StrColumn, data_version, load_snapshot
from ._stats import (
    DIMENSIONS,
    NO,
    SPEND_BANDS,
    UNKNOWN,
    YES,
    Distribution,
    _ordered,
    dimension_of,
    flagged_distributions,
    mask_small,
)
from .fields import AGE_BANDS, FieldRegistry, load_fields

__all__ = ["StepPreview", "all_distributions", "clear_caches", "preview_step", "segment_distributions"]

contacts = Contact.__table__
members = SegmentMember.__table__


@dataclass(frozen=True)
class StepPreview:
    """Everything the Builder shows about a pending step, computed without writing."""

    counts: Preview
    before: dict[str, Distribution]
    after: dict[str, Distribution]
    entering: tuple[int, ...]  # a sample of contact ids that would join
    leaving: tuple[int, ...]  # a sample of contact ids that would leave
    backend: str  # "memory" or "sql"
    elapsed_ms: float


# ------------------------------------------------------------------------------------------------ memory path

_members_cache: dict[tuple[str, int, int], np.ndarray] = {}
_dist_cache: dict[tuple[str, int, int, str, str, dt.date], Distribution] = {}
_cache_lock = threading.Lock()


def clear_caches() -> None:
    """Forget cached member masks and distributions (tests that reset a database in place)."""
    with _cache_lock:
        _members_cache.clear()
        _dist_cache.clear()
        _all_cache.clear()
        _sql_members_cache.clear()


def _members_mask(db: Database, snap: Snapshot, seg_id: int, version: int) -> np.ndarray:
    key = (db.url + "#" + snap.version, seg_id, version)
    mask = _members_cache.get(key)
    if mask is None:
        with db.read() as conn:
            ids = np.fromiter(conn.execute(_member_ids_of(seg_id)).scalars(), dtype=np.int64)
        mask = snap.mask_of(ids)
        with _cache_lock:
            # Keep only the newest version of each segment.
            for k in [k for k in _members_cache if k[:2] == key[:2]]:
                del _members_cache[k]
            _members_cache[key] = mask
    return mask


def _bucket_codes(snap: Snapshot, dimension: str, today: dt.date) -> tuple[np.ndarray, list[str]]:
    """One bucket index per contact, and the bucket labels (last label is for empty values)."""
    if dimension == "age_band":
        birth = snap.dates["birth_date"]
        labels = [b[0] for b in AGE_BANDS] + [UNKNOWN]
        out = np.full(snap.n, len(labels) - 1, dtype=np.int64)
        for i, (_label, lo, hi) in enumerate(AGE_BANDS):
            upper = (shift_years(today, -lo) - EPOCH).days
            m = (birth != NULL_DAY) & (birth <= upper)
            if hi is not None:
                m &= birth > (shift_years(today, -(hi + 1)) - EPOCH).days
            out[m] = i
        return out, labels
    if dimension == "spend_band":
        raw = snap.numbers["total_spent"]
        edges = np.asarray([b[1] for b in SPEND_BANDS[1:]])
        labels = [b[0] for b in SPEND_BANDS] + [UNKNOWN]
        codes = np.searchsorted(edges, np.nan_to_num(raw, nan=0.0), side="right").astype(np.int64)
        # A spend never given is "not set", not 0.
        return np.where(np.isnan(raw), len(labels) - 1, codes), labels
    spec = snap.fields.get(dimension)
    rule = DIMENSIONS[dimension].rule if dimension in DIMENSIONS else dimension_of(dimension, snap.fields).rule
    assert spec is not None
    if rule == "boolean":
        truth = snap.excluded if not spec.custom else snap.numbers[dimension] == 1
        codes = np.where(truth, 0, 1).astype(np.int64)
        if spec.custom:
            codes[np.isnan(snap.numbers[dimension])] = 2
        return codes, [YES, NO, UNKNOWN]
    if rule == "year":
        days = snap.dates[dimension]
        valid = days != NULL_DAY
        years = np.zeros(snap.n, dtype=np.int64)
        years[valid] = days[valid].astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        uniq = np.unique(years[valid])
        labels = [str(int(y)) for y in uniq] + [UNKNOWN]
        codes = np.full(snap.n, len(labels) - 1, dtype=np.int64)
        codes[valid] = np.searchsorted(uniq, years[valid])
        return codes, labels
    if rule == "magnitude":
        values = snap.numbers[dimension].astype(np.float64)
        valid = ~np.isnan(values)
        labels = ["< 0", "0", "0–1"] + [f"{10**k:,}–{10 ** (k + 1):,}" for k in range(15)] + [UNKNOWN]
        codes = np.full(snap.n, len(labels) - 1, dtype=np.int64)
        v = values[valid]
        power = np.clip(np.floor(np.log10(np.where(v >= 1, v, 1.0))), 0, 14).astype(np.int64) + 3
        codes[valid] = np.where(v < 0, 0, np.where(v == 0, 1, np.where(v < 1, 2, power)))
        return codes, labels
    col = snap.text[dimension]
    labels = [spec.normalize(v) for v in col.values.to_pylist()] + [UNKNOWN]
    codes = np.where(col.codes < 0, len(labels) - 1, col.codes).astype(np.int64)
    return codes, labels


def _distribution(snap: Snapshot, mask: np.ndarray, dimension: str, today: dt.date) -> Distribution:
    total = int(mask.sum())
    if dimension_of(dimension, snap.fields).multi:
        pairs = snap.lists[dimension]
        code = pairs.cols["code"]
        assert isinstance(code, StrColumn)
        rows = mask[pairs.pos]
        spec = snap.fields.get(dimension)
        assert spec is not None
        labels = [spec.normalize(v) for v in code.values.to_pylist()]
        counts_arr = np.bincount(code.codes[rows], minlength=len(labels))
        counts = {labels[i]: int(c) for i, c in enumerate(counts_arr) if c}
        having = np.zeros(snap.n, dtype=bool)
        having[pairs.pos[rows]] = True
        if total - int(having.sum()):
            counts[UNKNOWN] = total - int(having.sum())
    else:
        codes, labels = _bucket_codes(snap, dimension, today)
        counts_arr = np.bincount(codes[mask], minlength=len(labels))
        counts = {labels[i]: int(c) for i, c in enumerate(counts_arr) if c}
    return Distribution(dimension, _ordered(dimension, counts, snap.fields), total)


def _combine(
    before: Distribution, plus: Distribution | None, minus: Distribution | None, fields: FieldRegistry
) -> Distribution:
    counts = dict(before.counts)
    total = before.total
    if plus is not None:
        total += plus.total
        for k, v in plus.counts.items():
            counts[k] = counts.get(k, 0) + v
    if minus is not None:
        total -= minus.total
        for k, v in minus.counts.items():
            counts[k] = counts.get(k, 0) - v
    kept = {k: v for k, v in counts.items() if v}
    return Distribution(before.dimension, _ordered(before.dimension, kept, fields), total)


def _excluded(snap: Snapshot, request: ActionRequest) -> np.ndarray:
    """The contacts an adding step leaves out for their exclude-from-segments flag (none for other steps)."""
    if request.kind in ("add", "add_contacts", "add_emails") and not request.options.ignore_exclusion:
        return snap.excluded
    return np.zeros(snap.n, dtype=bool)


def _widen(snap: Snapshot, base: np.ndarray, request: ActionRequest) -> np.ndarray:
    """C' before the exclusion: the contact-type restriction, then the company options (as `_matched_set`)."""
    opts = request.options
    has_org = snap.org_pos >= 0
    if request.kind in ("refine", "reduce"):
        if not opts.entire_companies:
            return base
        return base | _org_members(snap, base & has_org)
    c = base
    if request.kind == "add":
        if opts.contact_type is not None:
            # Persons only / companies only restrict C before the company options widen it.
            base = base & (snap.is_person if opts.contact_type == "person" else ~snap.is_person)
            c = base
        if opts.expand_companies:
            c = c | _org_members(snap, base & has_org)
        if opts.related_companies:
            rel = np.zeros(snap.n, dtype=bool)
            rel[snap.org_pos[base & snap.is_person & has_org]] = True
            c = c | rel
    return c


def _org_members(snap: Snapshot, seeds: np.ndarray) -> np.ndarray:
    """Every contact whose company is the company of one of the seeds."""
    touched = np.zeros(snap.n, dtype=bool)
    touched[snap.org_pos[seeds]] = True
    has_org = snap.org_pos >= 0
    out = np.zeros(snap.n, dtype=bool)
    out[has_org] = touched[snap.org_pos[has_org]]
    return out


def _sample(snap: Snapshot, mask: np.ndarray, k: int) -> tuple[int, ...]:
    pos = np.flatnonzero(mask)[:k]
    return tuple(int(i) for i in snap.ids[pos])


def _preview_memory(
    db: Database, snap: Snapshot, no: str, request: ActionRequest, today: dt.date, dims: Sequence[str], sample: int
) -> StepPreview:
    start = time.perf_counter()
    unmatched: tuple[str, ...] = ()
    with db.read() as conn:
        row = _segment_row(conn, no)
        if request.kind in ("add", "refine", "reduce"):
            assert request.filter is not None
            base = evaluate(request.filter, snap, today=today)
        else:
            # Named contacts, e-mails and other segments are looked up in SQL (exact keys, error messages), then
            # follow the same option rules as filters below.
            ids_stmt, unmatched = _matched_set(conn, request, today=today, exclusion=False)
            ids = np.fromiter(conn.execute(ids_stmt).scalars(), dtype=np.int64)
            base = snap.mask_of(ids)
    members = _members_mask(db, snap, row.id, row.version)
    widened = _widen(snap, base, request)
    left_out = widened & _excluded(snap, request)
    matched = widened & ~left_out
    if request.adds:
        entering, leaving = matched & ~members, None
    elif request.kind == "refine":
        entering, leaving = None, members & ~matched
    else:
        entering, leaving = None, members & matched
    added = int(entering.sum()) if entering is not None else 0
    removed = int(leaving.sum()) if leaving is not None else 0
    skipped = int(left_out.sum())
    counts = Preview.of(
        request,
        int(members.sum()),
        # Refine/Reduce count the members the filter matched; Add counts every contact it would bring, Remove
        # contacts the named contacts found (as the log does).
        int((matched & members).sum()) if request.kind in ("refine", "reduce") else int(matched.sum()),
        added + removed,
        unmatched,
        skipped,
    )
    before: dict[str, Distribution] = {}
    after: dict[str, Distribution] = {}
    for dim in dims:
        key = (db.url, row.id, row.version, snap.version, dim, today)
        b = _dist_cache.get(key)
        if b is None:
            b = _distribution(snap, members, dim, today)
            with _cache_lock:
                if len(_dist_cache) > 512:
                    _dist_cache.clear()
                _dist_cache[key] = b
        before[dim] = b
        plus = _distribution(snap, entering, dim, today) if entering is not None and added else None
        minus = _distribution(snap, leaving, dim, today) if leaving is not None and removed else None
        after[dim] = _combine(b, plus, minus, snap.fields)
    return StepPreview(
        counts=counts,
        before=before,
        after=after,
        entering=_sample(snap, entering, sample) if entering is not None else (),
        leaving=_sample(snap, leaving, sample) if leaving is not None else (),
        backend="memory",
        elapsed_ms=(time.perf_counter() - start) * 1000,
    )


# ------------------------------------------------------------------------------------------------ SQL path


_sql_members_cache: dict[tuple[str, int, int, str, dt.date, tuple[str, ...]], dict[str, Distribution]] = {}


def _members_sql(
    conn: Connection, url: str, seg_id: int, version: int, dims: Sequence[str], today: dt.date
) -> dict[str, Distribution]:
    """The charts of a segment's members, computed by the database once per segment and data version."""
    if not dims:
        return {}
    key = (url, seg_id, version, data_version(conn), today, tuple(dims))
    hit = _sql_members_cache.get(key)
    if hit is None:
        frm = members.join(contacts, contacts.c.id == members.c.contact_id)
        [(_, hit)] = flagged_distributions(conn, frm, members.c.segment_id == seg_id, [sa.literal(1)], dims,
                                           today=today)
        with _cache_lock:
            if len(_sql_members_cache) > 256:
                _sql_members_cache.clear()
            _sql_members_cache[key] = hit
    return hit


def _shifted(
    before: dict[str, Distribution], change: dict[str, Distribution], sign: int, fields: FieldRegistry
) -> dict[str, Distribution]:
    """Charts after a step: the members' charts plus (sign 1) or minus (-1) the charts of who enters or leaves."""
    out = {}
    for d, b in before.items():
        c = change[d]
        counts = {k: b.counts.get(k, 0) + sign * c.counts.get(k, 0) for k in dict.fromkeys([*b.counts, *c.counts])}
        out[d] = Distribution(d, _ordered(d, {k: v for k, v in counts.items() if v}, fields), b.total + sign * c.total)
    return out


def _preview_sql(
    db: Database, no: str, request: ActionRequest, today: dt.date, dims: Sequence[str], sample: int
) -> StepPreview:
    start = time.perf_counter()
    with db.read() as conn:
        row = _segment_row(conn, no)
        excluding = request.kind == "add" and not request.options.ignore_exclusion
        # An Add scans C' taken without the exclusion and flags the excluded rows, so the same pass counts who the
        # exclusion leaves out (the gap between a value's count and the preview) at no extra scan.
        matched, unmatched = _matched_set(conn, request, today=today, segment_id=row.id, exclusion=not excluding)
        scan = _step_scan(row.id, request, matched)
        left_out: sa.ColumnElement[int] = sa.literal(0)
        if excluding:
            left_out = sa.case((contacts.c.exclude_from_segments.is_(True), 1), else_=0)
            scan = replace(scan, hit=scan.hit * (1 - left_out), chg=scan.chg * (1 - left_out))
        # One pass gives the counts and the charts of who enters or leaves (and, for a removing step, of the
        # members too, since it scans them).
        (_, rows), (n_hit, _), (n_chg, chg), (n_left_out, _) = flagged_distributions(
            conn, scan.frm, scan.where, [sa.literal(1), scan.hit, scan.chg, left_out], dims, today=today
        )
        if request.adds:
            before = _members_sql(conn, db.url, row.id, row.version, dims, today)
            after = _shifted(before, chg, 1, load_fields(conn))
        else:
            before = rows
            after = _shifted(before, chg, -1, load_fields(conn))
        # A sample of who changes; with no one changing there is nothing to look for (and no scan to wait on).
        sample_ids = tuple(
            int(i) for i in conn.execute(
                select(contacts.c.id).select_from(scan.frm).where(scan.where, scan.chg == 1).limit(sample)
            ).scalars()
        ) if n_chg and sample else ()
        if not request.adds and request.kind not in ("refine", "reduce"):
            n_hit = _count(conn, matched)  # remove contacts: "matched" counts the named contacts, members or not
        skipped = n_left_out if excluding else _skipped_excluded(conn, request, today, n_hit)
    return StepPreview(
        counts=Preview.of(request, int(row.size), n_hit, n_chg, unmatched, skipped),
        before=before,
        after=after,
        entering=sample_ids if request.adds else (),
        leaving=() if request.adds else sample_ids,
        backend="sql",
        elapsed_ms=(time.perf_counter() - start) * 1000,
    )


# ------------------------------------------------------------------------------------------------ router


def _limits(conn: Connection) -> tuple[int, int]:
    """(preview_memory_max_contacts, minimum_segment_size), read in one place."""
    return (
        read_setting(conn, "preview_memory_max_contacts"),
        read_setting(conn, "minimum_segment_size"),
    )


def _masked(dists: dict[str, Distribution], size: int, minimum: int) -> dict[str, Distribution]:
    # SPEC §3: a segment under the minimum size shows no bucket smaller than the minimum.
    if size >= minimum or size == 0:
        return dists
    return {d: mask_small(v, minimum) for d, v in dists.items()}


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
    """Preview a pending step; `backend` forces "memory" or "sql" (tests and benchmarks), else the setting decides.

    The charts of a side (now / after) whose size is under the minimum segment size hide their small buckets."""
    today = today or dt.date.today()
    with db.read() as conn:
        limit, minimum = _limits(conn)
    result: StepPreview | None = None
    if backend != "sql":
        snap = (
            load_snapshot(db, wait=True)
            if backend == "memory"
            else load_snapshot(db, max_contacts=limit)
        )
        if snap is not None:
            result = _preview_memory(db, snap, no, request, today, dimensions, sample)
    if result is None:
        result = _preview_sql(db, no, request, today, dimensions, sample)
    c = result.counts
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
    """The chart distributions of a segment's current members (in memory when the snapshot fits, else SQL).

    A segment under the minimum size gets its small buckets hidden (see `mask_small`)."""
    today = today or dt.date.today()
    with db.read() as conn:
        row = _segment_row(conn, no)
        limit, minimum = _limits(conn)
    snap = load_snapshot(db, max_contacts=limit)
    if snap is not None:
        members = _members_mask(db, snap, row.id, row.version)
        dists = {d: _distribution(snap, members, d, today) for d in dimensions}
    else:
        with db.read() as conn:
            dists = _members_sql(conn, db.url, row.id, row.version, tuple(dimensions), today)
    return _masked(dists, int(row.size), minimum)


_all_cache: dict[tuple[str, str, str, dt.date], Distribution] = {}


def all_distributions(
    db: Database, *, today: dt.date | None = None, dimensions: Sequence[str] = tuple(DIMENSIONS)
) -> dict[str, Distribution]:
    """The chart distributions of all contacts (never masked), the reference of a segment's composition."""
    today = today or dt.date.today()
    with db.read() as conn:
        limit, _ = _limits(conn)
    snap = load_snapshot(db, max_contacts=limit)
    if snap is None:
        with db.read() as conn:
            [(_, dists)] = flagged_distributions(conn, contacts, sa.true(), [sa.literal(1)], tuple(dimensions),
                                                 today=today)
            return dists
    out: dict[str, Distribution] = {}
    everyone: np.ndarray | None = None
    for d in dimensions:
        # Cached per snapshot version: the same for every segment until the data change.
        key = (db.url, snap.version, d, today)
        dist = _all_cache.get(key)
        if dist is None:
            everyone = np.ones(snap.n, dtype=bool) if everyone is None else everyone
            dist = _distribution(snap, everyone, d, today)
            with _cache_lock:
                if len(_all_cache) > 256:
                    _all_cache.clear()
                _all_cache[key] = dist
        out[d] = dist
    return out
