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
import sqlalchemy as sa
from sqlalchemy import Connection, Select, select

from .._dates import shift_years
from .._db import Database, after_commit
from .._fast_eval import evaluate
from .._filter_tree import Node, validate
from .._id_rows import id_rows
from .._models import Segment, SegmentMember, table_of
from .._parallel import chunks, run_all, thread_count
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
from .._steps import FILTER_KINDS, ActionRequest, Preview
from ..fields import AGE_BANDS, FieldRegistry, load_fields
from .base import FilterCount, MatchedSet, StepPreview
from .sql import SqlEvaluator

__all__ = ["MemoryEvaluator", "MemoryStepSets", "clear_caches"]

segments = table_of(Segment)
member_table = table_of(SegmentMember)
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
    mask = _members_cache.get((db.url + "#" + snap.version, seg_id, version))
    if mask is None:
        with db.read() as conn:
            ids = np.fromiter(conn.execute(member_ids_of(seg_id)).scalars(), dtype=np.int64)
        mask = snap.mask_of(ids)
        _keep_mask(db.url, snap, seg_id, version, mask)
    return mask


def _keep_mask(url: str, snap: Snapshot, seg_id: int, version: int, mask: np.ndarray) -> None:
    """Cache a segment version's members (committed ones only), keeping only the newest version of each segment."""
    key = (url + "#" + snap.version, seg_id, version)
    with _cache_lock:
        for k in [k for k in _members_cache if k[:2] == key[:2]]:
            del _members_cache[k]
        _members_cache[key] = mask


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


# Bucket codes per snapshot, dimension and day, as the smallest integers that hold them: computing them costs
# several passes over every contact (age bands: one per band; spend bands: a search), reading them one.
_codes_cache: dict[tuple[str, str, dt.date], tuple[Snapshot, np.ndarray, list[str], np.ndarray | None]] = {}


def _small(codes: np.ndarray, count: int) -> np.ndarray:
    dtype = (
        np.int8
        if count <= np.iinfo(np.int8).max
        else np.int16
        if count <= np.iinfo(np.int16).max
        else np.int32
    )
    return codes.astype(dtype, copy=False)


def _dimension_codes(
    snap: Snapshot, dimension: str, today: dt.date
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """(codes, labels, having) of a dimension: for a single-valued one a bucket per contact and None; for a list
    one a label code per (contact, code) row and which contacts have at least one row."""
    key = (snap.version, dimension, today)
    hit = _codes_cache.get(key)
    if hit is not None and hit[0] is snap:
        return hit[1], hit[2], hit[3]
    having: np.ndarray | None = None
    if dimension_of(dimension, snap.fields).multi:
        pairs = snap.lists[dimension]
        code = pairs.cols["code"]
        assert isinstance(code, StrColumn)
        spec = snap.fields.get(dimension)
        assert spec is not None
        labels = [spec.normalize(v) for v in code.values.to_pylist()]
        codes = _small(code.codes, len(labels))
        having = np.zeros(snap.n, dtype=bool)
        having[pairs.pos] = True
    else:
        wide, labels = _bucket_codes(snap, dimension, today)
        codes = _small(wide, len(labels))
    with _cache_lock:
        # Only the current snapshot's codes are worth keeping.
        for k in [k for k, v in _codes_cache.items() if v[0] is not snap or len(_codes_cache) > 64]:
            del _codes_cache[k]
        _codes_cache[key] = (snap, codes, labels, having)
    return codes, labels, having


def _distributions(
    snap: Snapshot, mask: np.ndarray, dimensions: Sequence[str], today: dt.date
) -> dict[str, Distribution]:
    """The charts of the contacts in `mask`, one task a dimension (and a part of the contacts) on the scan threads.

    The contacts' positions are found once for every dimension; each chart then reads only their codes."""
    if not dimensions:
        return {}
    total = int(np.count_nonzero(mask))
    everyone = total == snap.n
    pos = None if everyone else np.flatnonzero(mask)
    size = snap.n if pos is None else len(pos)
    # A dimension a task while there are enough of them for the threads; a lone chart is split by contacts.
    parts = [(0, size)] if len(dimensions) >= thread_count() else chunks(size)
    coded = {d: _dimension_codes(snap, d, today) for d in dimensions}

    def count(dim: str, lo: int, hi: int) -> np.ndarray:
        codes, labels, having = coded[dim]
        if having is not None:
            # A list dimension: its (contact, code) rows of the chosen contacts, in one task.
            chosen = codes if pos is None else codes[mask[snap.lists[dim].pos]]
        else:
            chosen = codes[lo:hi] if pos is None else codes[pos[lo:hi]]
        return np.bincount(chosen, minlength=len(labels))

    tasks = [(d, lo, hi) for d in dimensions for lo, hi in (parts if coded[d][2] is None else [(0, size)])]
    results = run_all([lambda t=t: count(*t) for t in tasks])
    summed: dict[str, np.ndarray] = {}
    for (d, _lo, _hi), arr in zip(tasks, results, strict=True):
        summed[d] = summed[d] + arr if d in summed else arr
    out: dict[str, Distribution] = {}
    for d in dimensions:
        _codes, labels, having = coded[d]
        counts = {labels[i]: int(c) for i, c in enumerate(summed[d]) if c}
        if having is not None:
            without = total - int(np.count_nonzero(having if pos is None else having[pos]))
            if without:
                counts[UNKNOWN] = without
        out[d] = Distribution(d, _ordered(d, counts, snap.fields), total)
    return out


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


def _changed(request: ActionRequest, matched: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Who a filter step changes, given C' (`matched`): the contacts an Add brings in, the members Refine or Reduce
    takes out. One rule for the preview and the commit."""
    if request.adds:
        return matched & ~members
    return members & ~matched if request.kind == "refine" else members & matched


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
        changed = _changed(request, matched, members)
        entering = changed if request.adds else None
        leaving = None if request.adds else changed
        # count_nonzero, not sum: a sum of booleans widens each to an integer first (ten times slower at 10M).
        added = int(np.count_nonzero(entering)) if entering is not None else 0
        removed = int(np.count_nonzero(leaving)) if leaving is not None else 0
        counts = Preview.of(
            request,
            int(np.count_nonzero(members)),
            # Refine/Reduce count the members the filter matched; Add counts every contact it would bring, Remove
            # contacts the named contacts found (as the log does).
            int(np.count_nonzero(matched & members)) if request.kind in ("refine", "reduce")
            else int(np.count_nonzero(matched)),
            added + removed,
            unmatched,
            int(np.count_nonzero(left_out)),
        )  # fmt: skip
        before = self._members_distributions(row.id, row.version, members, dimensions, today)
        plus = _distributions(snap, entering, dimensions, today) if entering is not None and added else {}
        minus = _distributions(snap, leaving, dimensions, today) if leaving is not None and removed else {}
        after = {d: _combine(before[d], plus.get(d), minus.get(d), snap.fields) for d in dimensions}
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
        return self._members_distributions(row.id, row.version, members, dimensions, today)

    def all_distributions(self, *, today: dt.date, dimensions: Sequence[str]) -> dict[str, Distribution]:
        snap = self.snapshot
        # Cached per snapshot version: the same for every segment until the data change.
        out = {d: _all_cache.get((self._db.url, snap.version, d, today)) for d in dimensions}
        missing = [d for d, dist in out.items() if dist is None]
        if missing:
            fresh = _distributions(snap, np.ones(snap.n, dtype=bool), missing, today)
            with _cache_lock:
                if len(_all_cache) > 256:
                    _all_cache.clear()
                for d, dist in fresh.items():
                    _all_cache[(self._db.url, snap.version, d, today)] = dist
            out.update(fresh)
        return {d: dist for d, dist in out.items() if dist is not None}

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

    def _members_distributions(
        self, seg_id: int, version: int, members: np.ndarray, dimensions: Sequence[str], today: dt.date
    ) -> dict[str, Distribution]:
        snap = self.snapshot
        key = (self._db.url, seg_id, version, snap.version)
        out = {d: _dist_cache.get((*key, d, today)) for d in dimensions}
        missing = [d for d, dist in out.items() if dist is None]
        if missing:
            fresh = _distributions(snap, members, missing, today)
            with _cache_lock:
                if len(_dist_cache) > 512:
                    _dist_cache.clear()
                for d, dist in fresh.items():
                    _dist_cache[(*key, d, today)] = dist
            out.update(fresh)
        return {d: dist for d, dist in out.items() if dist is not None}


class MemoryStepSets:
    """The sets a commit writes from, when this process holds the snapshot of exactly the data the write
    transaction sees (its data version is the transaction's): who a filter step adds or removes is found with numpy,
    as in the preview, and only those ids go to the database, as one bound list. The 10M-contact Add no longer
    scans the contacts table a second time. Named contacts, e-mails and reused segments go to SQL."""

    def __init__(self, conn: Connection, snap: Snapshot, url: str) -> None:
        self._conn = conn
        self.snapshot = snap
        self._url = url
        self._sql = SqlEvaluator(conn=conn)
        self._changed = False

    def _members(self, seg_id: int, size: int) -> np.ndarray:
        """The members as a mask, read in this transaction (never from the preview cache: a replay's scratch
        segment may be rolled back, and its id and version come again)."""
        snap = self.snapshot
        if not size:
            return np.zeros(snap.n, dtype=bool)
        rows = self._conn.execute(member_ids_of(seg_id)).scalars()
        return snap.mask_of(np.fromiter(rows, dtype=np.int64))

    def matched_set(
        self,
        request: ActionRequest,
        *,
        today: dt.date | None,
        segment_id: int | None = None,
        exclusion: bool = True,
    ) -> MatchedSet:
        if request.kind not in FILTER_KINDS or segment_id is None:
            return self._sql.matched_set(request, today=today, segment_id=segment_id, exclusion=exclusion)
        assert request.filter is not None
        conn, snap = self._conn, self.snapshot
        # The same whitelist and messages as SQL, against the registry this transaction sees.
        validate(request.filter, load_fields(conn))
        size, version = conn.execute(
            select(segments.c.size, segments.c.version).where(segments.c.id == segment_id)
        ).one()
        members = self._members(segment_id, int(size))
        base = evaluate(request.filter, snap, today=today or dt.date.today())
        widened = _widen(snap, base, request)
        matched = widened & ~_excluded(snap, request) if exclusion else widened
        changed = _changed(request, matched, members)
        # Refine and Reduce count the members the filter matched (as the log always has, and the preview does).
        count = int(np.count_nonzero(matched if request.adds else matched & members))
        ids = snap.ids[np.flatnonzero(changed)]
        self._changed = True
        # The next preview needs the members after this step: known here, so it is not read back (seconds at 3M).
        # Kept only once the transaction commits, as the version the engine's one bump gives.
        after = members | changed if request.adds else members & ~changed
        after_commit(conn, lambda: _keep_mask(self._url, snap, segment_id, int(version) + 1, after))
        return MatchedSet(id_rows(conn, ids), count=count, changed=ids)

    def removal_condition(self, segment_id: int, request: ActionRequest, matched: Select) -> sa.ColumnElement[bool]:
        if not self._changed:
            return self._sql.removal_condition(segment_id, request, matched)
        # `matched` holds the members to take out already, whichever the kind.
        return sa.and_(member_table.c.segment_id == segment_id, member_table.c.contact_id.in_(matched))

    def count_ids(self, ids: Select) -> int:
        return self._sql.count_ids(ids)
