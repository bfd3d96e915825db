"""The in-memory backend: filters evaluated with numpy over the columnar snapshot of the contacts (`_snapshot`,
`_fast_eval`), the fast path while the contacts fit (setting `preview_memory_max_contacts`).

Member sets come from the application database (they change with every step) and are cached per segment version
as boolean masks over the snapshot; charts of a segment are cached per segment version, charts of all contacts per
snapshot version. Named contacts, e-mails and reused segments are looked up in SQL (exact keys, the same error
messages), then follow the same option rules as filters.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Sequence

import numpy as np
from sqlalchemy import select

from .._dates import shift_years
from .._db import Database
from .._fast_eval import evaluate
from .._filter_tree import Node
from .._models import Segment, table_of
from .._segment_rows import member_ids_of, segment_row
from .._snapshot import EPOCH, NULL_DAY, Snapshot, StrColumn
from .._stats import (
    DIMENSIONS,
    NO,
    SPEND_BANDS,
    UNKNOWN,
    YES,
    Distribution,
    _ordered,
    dimension_of,
)
from .._steps import ActionRequest, Preview
from ..fields import AGE_BANDS, FieldRegistry
from .base import FilterCount, StepPreview
from .sql import SqlEvaluator

__all__ = ["MemoryEvaluator", "clear_caches"]

segments = table_of(Segment)
_members_cache: dict[tuple[str, int, int], np.ndarray] = {}
_dist_cache: dict[tuple[str, int, int, str, str, dt.date], Distribution] = {}
_all_cache: dict[tuple[str, str, str, dt.date], Distribution] = {}
_cache_lock = threading.Lock()


def clear_caches() -> None:
    """Forget cached member masks and distributions (tests that reset a database in place)."""
    with _cache_lock:
        _members_cache.clear()
        _dist_cache.clear()
        _all_cache.clear()


def _members_mask(db: Database, snap: Snapshot, seg_id: int, version: int) -> np.ndarray:
    key = (db.url + "#" + snap.version, seg_id, version)
    mask = _members_cache.get(key)
    if mask is None:
        with db.read() as conn:
            ids = np.fromiter(conn.execute(member_ids_of(seg_id)).scalars(), dtype=np.int64)
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
    rule = (
        DIMENSIONS[dimension].rule if dimension in DIMENSIONS else dimension_of(dimension, snap.fields).rule
    )
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
    if request.excluding:
        return snap.excluded
    return np.zeros(snap.n, dtype=bool)


def _widen(snap: Snapshot, base: np.ndarray, request: ActionRequest) -> np.ndarray:
    """C' before the exclusion: the contact-type restriction, then the company options (as the SQL matched set)."""
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


class MemoryEvaluator:
    """Answers from one snapshot of the contacts with numpy; member sets read from the database."""

    name = "memory"

    def __init__(self, db: Database, snap: Snapshot) -> None:
        self._db = db
        self.snapshot = snap

    def count(self, node: Node, *, today: dt.date) -> FilterCount:
        snap = self.snapshot
        hit = evaluate(node, snap, today=today)
        excluded = int(np.count_nonzero(hit & snap.excluded))
        return FilterCount(int(np.count_nonzero(hit)) - excluded, excluded, int(snap.n))

    def preview_step(
        self, no: str, request: ActionRequest, *, today: dt.date, dimensions: Sequence[str], sample: int
    ) -> StepPreview:
        start = time.perf_counter()
        db, snap = self._db, self.snapshot
        unmatched: tuple[str, ...] = ()
        with db.read() as conn:
            row = segment_row(conn, no)
            if request.kind in ("add", "refine", "reduce"):
                assert request.filter is not None
                base = evaluate(request.filter, snap, today=today)
            else:
                found = SqlEvaluator(conn=conn).matched_set(request, today=today, exclusion=False)
                ids = np.fromiter(conn.execute(found.ids).scalars(), dtype=np.int64)
                base, unmatched = snap.mask_of(ids), found.unmatched
        members = _members_mask(db, snap, row.id, row.version)
        widened = _widen(snap, base, request)
        left_out = widened & _excluded(snap, request)
        matched = widened & ~left_out
        entering: np.ndarray | None = None
        leaving: np.ndarray | None = None
        if request.adds:
            entering = matched & ~members
        elif request.kind == "refine":
            leaving = members & ~matched
        else:
            leaving = members & matched
        added = int(entering.sum()) if entering is not None else 0
        removed = int(leaving.sum()) if leaving is not None else 0
        counts = Preview.of(
            request,
            int(members.sum()),
            # Refine/Reduce count the members the filter matched; Add counts every contact it would bring, Remove
            # contacts the named contacts found (as the log does).
            int((matched & members).sum()) if request.kind in ("refine", "reduce") else int(matched.sum()),
            added + removed,
            unmatched,
            int(left_out.sum()),
        )
        before: dict[str, Distribution] = {}
        after: dict[str, Distribution] = {}
        for dim in dimensions:
            b = self._members_distribution(row.id, row.version, members, dim, today)
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
            backend=self.name,
            elapsed_ms=(time.perf_counter() - start) * 1000,
        )

    def segment_distributions(
        self, no: str, *, today: dt.date, dimensions: Sequence[str]
    ) -> dict[str, Distribution]:
        with self._db.read() as conn:
            row = segment_row(conn, no)
        members = _members_mask(self._db, self.snapshot, row.id, row.version)
        return {d: self._members_distribution(row.id, row.version, members, d, today) for d in dimensions}

    def all_distributions(self, *, today: dt.date, dimensions: Sequence[str]) -> dict[str, Distribution]:
        snap = self.snapshot
        out: dict[str, Distribution] = {}
        everyone: np.ndarray | None = None
        for d in dimensions:
            # Cached per snapshot version: the same for every segment until the data change.
            key = (self._db.url, snap.version, d, today)
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

    def overlap(self, segment_ids: Sequence[int]) -> dict[tuple[int, int], int]:
        ids = sorted(set(segment_ids))
        if not ids:
            return {}
        with self._db.read() as conn:
            versions = dict(
                conn.execute(select(segments.c.id, segments.c.version).where(segments.c.id.in_(ids))).all()
            )
        # The member masks are the ones previews cache, so comparing segments just built costs one AND per pair.
        masks = {i: _members_mask(self._db, self.snapshot, i, int(versions[i])) for i in ids if i in versions}
        out: dict[tuple[int, int], int] = {}
        for k, a in enumerate(ids):
            for b in ids[k:]:
                if a in masks and b in masks:
                    n = int(np.count_nonzero(masks[a] & masks[b]))
                    if n:
                        out[(a, b)] = n
        return out

    def _members_distribution(
        self, seg_id: int, version: int, members: np.ndarray, dim: str, today: dt.date
    ) -> Distribution:
        snap = self.snapshot
        key = (self._db.url, seg_id, version, snap.version, dim, today)
        b = _dist_cache.get(key)
        if b is None:
            b = _distribution(snap, members, dim, today)
            with _cache_lock:
                if len(_dist_cache) > 512:
                    _dist_cache.clear()
                _dist_cache[key] = b
        return b
