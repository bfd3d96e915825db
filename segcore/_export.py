"""Export a segment's members with their contact fields to CSV or Excel (SPEC §3 Export).

The columns are the contacts import format (`CONTACT_COLUMNS`, lists joined with `;`, profile as `Q=A`), so an
exported file can be imported again. Members are read in key-ordered chunks and formatted column by column
(pandas), so a 300,000-member segment never sits in memory as Python rows all at once. Any text cell that a
spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa
from openpyxl import Workbook
from sqlalchemy import Connection, select

from ._browse import minimum_segment_size
from ._db import Database
from ._errors import NotFoundError, RefusedError, UsageError
from ._models import Contact, ContactCode, ProfileAnswer, Segment, SegmentMember
from .fields import LIST_FIELDS
from .imports.check import CONTACT_COLUMNS

__all__ = ["EXPORT_COLUMNS", "FORMATS", "check_exportable", "export_frames", "export_members", "export_rows", "neutralise"]

contacts = Contact.__table__
members = SegmentMember.__table__
codes = ContactCode.__table__
answers = ProfileAnswer.__table__
segments = Segment.__table__

EXPORT_COLUMNS: tuple[str, ...] = tuple(CONTACT_COLUMNS)
FORMATS = ("csv", "xlsx")
_CHUNK = 50_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DIRECT = tuple(c for c in EXPORT_COLUMNS if c in contacts.c)
_DATES = frozenset({"birth_date", "acquisition_date", "last_purchase_date"})
_MONEY = frozenset({"total_spent"})
_INTEGERS = frozenset({"rating", "purchase_count"})
_BOOLEANS = frozenset({"exclude_from_segments"})

Progress = Callable[[int, int, str], None]


def neutralise(value: str) -> str:
    """A text cell a spreadsheet would evaluate (=, +, -, @, tab, CR first) gets a leading quote."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _checked_segment(conn: Connection, no: str, minimum: int) -> tuple[int, int]:
    row = conn.execute(select(segments.c.id, segments.c.size).where(segments.c.no == no)).first()
    if row is None:
        raise NotFoundError(f"no segment {no!r}")
    if row.size == 0:
        raise RefusedError(f"segment {no} has no members to export")
    if row.size < minimum:
        # SPEC §3: a small segment cannot be exported (it could single people out).
        raise RefusedError(
            f"segment {no} has {row.size:,} members, fewer than the minimum of {minimum:,}: it cannot be exported"
        )
    return int(row.id), int(row.size)


def _joined(conn: Connection, stmt: Any) -> dict[str, dict[int, str]]:
    """(contact id, key, value) rows, sorted by the SQL, as {key: {contact id: "v1;v2"}}.

    A plain loop: pandas' groupby-join calls Python once per group anyway, with more overhead per call."""
    grouped: dict[str, dict[int, list[str]]] = {}
    for cid, key, value in conn.execute(stmt).all():
        grouped.setdefault(key, {}).setdefault(cid, []).append(value)
    return {key: {cid: ";".join(values) for cid, values in by_id.items()} for key, by_id in grouped.items()}


def check_exportable(db: Database, no: str) -> int:
    """The member count when the segment may be exported; RefusedError (empty, or under the minimum) otherwise."""
    minimum = minimum_segment_size(db)
    with db.read() as conn:
        return _checked_segment(conn, no, minimum)[1]


def export_frames(db: Database, no: str, *, progress: Progress | None = None) -> Iterator[pd.DataFrame]:
    """The members in chunks of rows, as typed frames with the export columns, in contact row order.

    Refuses (RefusedError) an empty segment or one under the minimum size at once, before any file is begun."""
    minimum = minimum_segment_size(db)
    with db.read() as conn:
        seg_id, size = _checked_segment(conn, no, minimum)
    return _member_frames(db, seg_id, size, progress)


def export_rows(db: Database, no: str, *, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """The same members one dict a row (None for empty), for callers that want rows."""
    frames = export_frames(db, no, progress=progress)

    def rows() -> Iterator[dict[str, Any]]:
        for frame in frames:
            yield from frame.astype(object).where(frame.notna(), None).to_dict("records")

    return rows()


def _member_frames(db: Database, seg_id: int, size: int, progress: Progress | None) -> Iterator[pd.DataFrame]:
    with db.read() as conn:
        last, done = -1, 0
        while True:
            # Keyset paging on the members key: each chunk is an index range, never a growing OFFSET.
            rows = conn.execute(
                select(contacts.c.id, *[contacts.c[c] for c in _DIRECT])
                .join(members, members.c.contact_id == contacts.c.id)
                .where(members.c.segment_id == seg_id, members.c.contact_id > last)
                .order_by(members.c.contact_id)
                .limit(_CHUNK)
            ).all()
            if not rows:
                break
            # Plain tuples: pandas probes each SQLAlchemy Row for attributes, which is slow on 50,000 rows.
            frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=["id", *_DIRECT])
            lo, hi = int(frame["id"].iloc[0]), int(frame["id"].iloc[-1])
            in_range = (members.c.segment_id == seg_id, members.c.contact_id.between(lo, hi))
            lists = _joined(
                conn,
                select(codes.c.contact_id, codes.c.kind, codes.c.code)
                .join(members, members.c.contact_id == codes.c.contact_id)
                .where(*in_range)
                .order_by(codes.c.contact_id, codes.c.kind, codes.c.code),
            )
            profile = _joined(
                conn,
                select(answers.c.contact_id, sa.literal("profile"), answers.c.questionnaire + "=" + answers.c.answer)
                .join(members, members.c.contact_id == answers.c.contact_id)
                .where(*in_range)
                .order_by(answers.c.contact_id, answers.c.questionnaire, answers.c.answer),
            )
            ids = frame["id"].tolist()
            for name, source in [(k, lists) for k in LIST_FIELDS] + [("profile", profile)]:
                joined = source.get(name, {})
                frame[name] = [joined.get(i, "") for i in ids]
            yield frame[list(EXPORT_COLUMNS)]
            last = hi
            done += len(frame)
            if progress:
                progress(done, size, "exporting")


def _neutralised(column: pd.Series) -> pd.Series:
    """Text cells a spreadsheet would evaluate get a leading quote (vectorised neutralise)."""
    text = column.astype(object).where(column.notna(), "").astype(str)
    risky = text.str.startswith(_FORMULA_START)
    return text.where(~risky, "'" + text)


def _csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for name in EXPORT_COLUMNS:
        col = frame[name]
        if name in _DATES:
            out[name] = col.map(lambda d: d.isoformat() if d is not None and d == d else "")
        elif name in _MONEY:
            out[name] = col.map(lambda v: "" if v is None or v != v else f"{v:.2f}")
        elif name in _INTEGERS:
            out[name] = col.astype("Int64").astype(str).replace("<NA>", "")
        elif name in _BOOLEANS:
            out[name] = col.map(lambda v: "" if v is None else ("true" if v else "false"))
        else:
            out[name] = _neutralised(col)
    return out


def _to_csv(frames: Iterator[pd.DataFrame]) -> bytes:
    buf = io.StringIO()
    buf.write(",".join(EXPORT_COLUMNS) + "\r\n")
    for frame in frames:
        _csv_frame(frame).to_csv(buf, header=False, index=False, lineterminator="\r\n")
    # UTF-8 with a BOM: Excel then shows accented names right, and the importer reads the BOM.
    return buf.getvalue().encode("utf-8-sig")


def _xlsx_rows(frame: pd.DataFrame) -> Iterator[tuple[Any, ...]]:
    # Numbers, dates and booleans stay typed; only text can carry a formula. Empty text is an empty cell.
    typed = frame.astype(object).where(frame.notna(), None)
    for name in _INTEGERS:
        # A column with an empty cell comes back as floats: write 4, not 4.0.
        whole = frame[name].astype("Int64")
        typed[name] = whole.astype(object).where(whole.notna(), None)
    for name in EXPORT_COLUMNS:
        if name not in _DATES | _MONEY | _INTEGERS | _BOOLEANS:
            text = _neutralised(frame[name])
            typed[name] = text.where(text != "", None)
    return typed.itertuples(index=False, name=None)


def _to_xlsx(frames: Iterator[pd.DataFrame], title: str) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "Members")
    ws.append(list(EXPORT_COLUMNS))
    for frame in frames:
        for row in _xlsx_rows(frame):
            ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_members(db: Database, no: str, fmt: str = "csv", *, progress: Progress | None = None) -> bytes:
    """The segment's members with their contact fields as a CSV or Excel file's bytes."""
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; use csv or xlsx")
    frames = export_frames(db, no, progress=progress)
    if fmt == "csv":
        return _to_csv(frames)
    # Sheet titles cannot hold []:*?/\ ; segment numbers never do (letters, digits, - _ .).
    return _to_xlsx(frames, f"Segment {no}")
