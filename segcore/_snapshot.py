"""A columnar, read-only copy of the contact attributes in memory, for fast previews.

SQL stays the system of record. The snapshot holds what filters and charts read, encoded compactly: strings as
dictionary codes over lower-cased distinct values, dates as int32 day numbers, codes of list fields and related
records as (row position, value code) pairs. Row position i is the i-th contact by id.

It is rebuilt when the data changes (`data_version` in the settings table, bumped by every import); segment
members are not part of it (the preview reads them per segment version).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, func, select, update

from ._db import Database
from ._models import Contact, ContactCode, Interaction, ProfileAnswer, Setting

__all__ = [
    "NULL_DAY",
    "Snapshot",
    "StrColumn",
    "bump_data_version",
    "data_version",
    "load_snapshot",
]

NULL_DAY = np.iinfo(np.int32).min
EPOCH = dt.date(1970, 1, 1)

TEXT_COLUMNS = (
    "contact_no", "type", "company_no", "name", "email", "email_domain", "phone", "city", "post_code", "territory",
    "salesperson", "country", "language", "gender", "acquisition_source", "churn_risk",
)  # fmt: skip
DATE_COLUMNS = ("birth_date", "acquisition_date", "last_purchase_date")
NUMBER_COLUMNS = ("rating", "total_spent", "purchase_count")
LIST_KINDS = ("mailing_groups", "industry_groups", "job_responsibilities")
INTERACTION_TEXT = ("template", "campaign_no", "segment_no", "evaluation", "salesperson")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class StrColumn:
    """A string column as codes into lower-cased distinct values; code -1 is empty (NULL or '')."""

    codes: np.ndarray  # int32, one per row
    values: pa.Array  # distinct lower-cased strings (Arrow: compact, and vectorised string kernels)

    @classmethod
    def encode(cls, raw: Sequence[Any] | np.ndarray | pd.Series) -> StrColumn:
        # Factorize first, lower the distinct values only (Python's str.lower, the same folding SQLite uses here),
        # then merge distinct values that fold together.
        codes, uniques = pd.factorize(pd.Series(raw, dtype=object), use_na_sentinel=True)
        lowered = [u.lower() if isinstance(u, str) else None for u in uniques]
        lowered = [None if v == "" else v for v in lowered]
        codes2, uniques2 = pd.factorize(pd.Series(lowered, dtype=object), use_na_sentinel=True)
        remap = np.append(codes2, -1).astype(np.int32)
        final = remap[codes.astype(np.int64)] if len(codes) else np.zeros(0, dtype=np.int32)
        return cls(final.astype(np.int32), pa.array(list(uniques2), type=pa.string()))

    def value_mask(self, predicate_mask: np.ndarray) -> np.ndarray:
        """Rows whose distinct value satisfies predicate_mask (one bool per distinct value); empty rows never."""
        ext = np.append(predicate_mask, False)  # code -1 picks the appended False
        return ext[self.codes]

    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.values.nbytes)


@dataclass
class Pairs:
    """Many-to-one rows (list codes, profile answers, interactions): row position plus attributes."""

    pos: np.ndarray  # int32 contact position
    cols: dict[str, Any] = field(default_factory=dict)  # name -> StrColumn or int32 day array

    def nbytes(self) -> int:
        total = self.pos.nbytes
        for c in self.cols.values():
            total += c.nbytes() if isinstance(c, StrColumn) else c.nbytes
        return int(total)


@dataclass
class Snapshot:
    """The in-memory columns of every contact, for one data version."""

    version: str
    n: int
    ids: np.ndarray  # int64 sorted contact ids; position = index
    text: dict[str, StrColumn]
    dates: dict[str, np.ndarray]  # int32 days since 1970-01-01, NULL_DAY for empty
    numbers: dict[str, np.ndarray]  # float64, NaN for empty
    excluded: np.ndarray  # bool
    org_pos: np.ndarray  # int32 position of the company a contact is or belongs to, -1 for none
    is_person: np.ndarray  # bool
    lists: dict[str, Pairs]
    profile: Pairs
    interactions: Pairs
    built_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))

    def positions(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row positions of contact ids (ids must exist)."""
        arr = np.asarray(ids, dtype=np.int64)
        return np.searchsorted(self.ids, arr).astype(np.int64)

    def mask_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        mask = np.zeros(self.n, dtype=bool)
        if len(ids):
            mask[self.positions(ids)] = True
        return mask

    def nbytes(self) -> int:
        total = self.ids.nbytes + self.excluded.nbytes + self.org_pos.nbytes + self.is_person.nbytes
        total += sum(c.nbytes() for c in self.text.values())
        total += sum(a.nbytes for a in self.dates.values()) + sum(a.nbytes for a in self.numbers.values())
        total += sum(p.nbytes() for p in self.lists.values()) + self.profile.nbytes() + self.interactions.nbytes()
        return int(total)


# ----------------------------------------------------------------------------------------------- data version

_DATA_VERSION_KEY = "data_version"


def data_version(conn: Connection) -> str:
    """A token that changes whenever contacts, their codes, answers or interactions change."""
    value = conn.execute(select(Setting.value).where(Setting.key == _DATA_VERSION_KEY)).scalar()
    return str(value or 0)


def bump_data_version(conn: Connection) -> None:
    """Call in the same transaction as any change to contacts, codes, profile answers or interactions."""
    table = Setting.__table__
    current = conn.execute(select(table.c.value).where(table.c.key == _DATA_VERSION_KEY)).scalar()
    if current is None:
        conn.execute(table.insert().values(key=_DATA_VERSION_KEY, value=1))
    else:
        conn.execute(update(table).where(table.c.key == _DATA_VERSION_KEY).values(value=int(current) + 1))


# ----------------------------------------------------------------------------------------------- building


def _days(values: Sequence[Any]) -> np.ndarray:
    out = np.full(len(values), NULL_DAY, dtype=np.int32)
    for i, v in enumerate(values):
        if v is not None:
            if isinstance(v, str):
                v = dt.date.fromisoformat(v)
            out[i] = (v - EPOCH).days
    return out


def _column(conn: Connection, col: Any) -> list[Any]:
    return list(conn.execute(select(col).order_by(Contact.id)).scalars())


def _build(conn: Connection, version: str) -> Snapshot:
    t = Contact.__table__
    ids = np.asarray(_column(conn, t.c.id), dtype=np.int64)
    n = len(ids)
    text = {name: StrColumn.encode(_column(conn, t.c[name])) for name in TEXT_COLUMNS}
    dates = {name: _days(_column(conn, t.c[name])) for name in DATE_COLUMNS}
    numbers = {
        name: np.asarray([np.nan if v is None else float(v) for v in _column(conn, t.c[name])], dtype=np.float64)
        for name in NUMBER_COLUMNS
    }
    excluded = np.asarray(_column(conn, t.c.exclude_from_segments), dtype=bool)
    org_ids = _column(conn, t.c.org_id)
    org_pos = np.full(n, -1, dtype=np.int32)
    has = np.asarray([o is not None for o in org_ids], dtype=bool)
    if has.any():
        org_pos[has] = np.searchsorted(ids, np.asarray([o for o in org_ids if o is not None], dtype=np.int64))
    type_values = text["type"].values
    is_person = text["type"].value_mask(
        np.asarray(pc.equal(type_values, "person").to_numpy(zero_copy_only=False), dtype=bool)
    )

    def positions(contact_ids: Sequence[int]) -> np.ndarray:
        return np.searchsorted(ids, np.asarray(contact_ids, dtype=np.int64)).astype(np.int32)

    lists: dict[str, Pairs] = {}
    ct = ContactCode.__table__
    for kind in LIST_KINDS:
        rows = conn.execute(select(ct.c.contact_id, ct.c.code).where(ct.c.kind == kind)).all()
        cids, codes = (list(x) for x in zip(*rows, strict=True)) if rows else ([], [])
        lists[kind] = Pairs(positions(cids), {"code": StrColumn.encode(codes)})

    pt = ProfileAnswer.__table__
    rows = conn.execute(select(pt.c.contact_id, pt.c.questionnaire, pt.c.answer)).all()
    cids, qs, ans = (list(x) for x in zip(*rows, strict=True)) if rows else ([], [], [])
    profile = Pairs(positions(cids), {"questionnaire": StrColumn.encode(qs), "answer": StrColumn.encode(ans)})

    it = Interaction.__table__
    # Cancelled interactions never count in filters, so they are not loaded at all.
    rows = conn.execute(
        select(it.c.contact_id, it.c.date, *[it.c[c] for c in INTERACTION_TEXT]).where(it.c.cancelled.is_(False))
    ).all()
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(2 + len(INTERACTION_TEXT))]
    inter_cols: dict[str, Any] = {"date": _days(cols[1])}
    for i, name in enumerate(INTERACTION_TEXT):
        inter_cols[name] = StrColumn.encode(cols[2 + i])
    interactions = Pairs(positions(cols[0]), inter_cols)

    return Snapshot(
        version=version, n=n, ids=ids, text=text, dates=dates, numbers=numbers, excluded=excluded,
        org_pos=org_pos, is_person=is_person, lists=lists, profile=profile, interactions=interactions,
    )


# ----------------------------------------------------------------------------------------------- cache

_cache: dict[str, Snapshot] = {}
_lock = threading.Lock()


def _cache_key(db: Database) -> str:
    return hashlib.sha1(db.url.encode()).hexdigest()


def load_snapshot(db: Database, *, max_contacts: int | None = None) -> Snapshot | None:
    """The snapshot for the database's current data, built if needed; None when it has more contacts than
    `max_contacts` (previews then run in SQL)."""
    with db.read() as conn:
        version = data_version(conn)
        key = _cache_key(db)
        snap = _cache.get(key)
        if snap is not None and snap.version == version:
            return snap
        if max_contacts is not None:
            count = conn.execute(select(func.count()).select_from(Contact.__table__)).scalar_one()
            if count > max_contacts:
                return None
    with _lock:
        snap = _cache.get(key)
        if snap is not None and snap.version == version:
            return snap
        with db.read() as conn:
            # Read the version again inside the transaction that reads the rows, so the two match.
            version = data_version(conn)
            snap = _build(conn, version)
        _cache[key] = snap
        return snap


def drop_cached(db: Database | None = None) -> None:
    """Forget cached snapshots (all, or one database's)."""
    with _lock:
        if db is None:
            _cache.clear()
        else:
            _cache.pop(_cache_key(db), None)
