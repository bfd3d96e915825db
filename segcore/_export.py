"""Export a segment's members with their contact fields to CSV or Excel (SPEC §3 Export).

The columns are the contacts import format (`CONTACT_COLUMNS`, lists joined with `;`, profile as `Q=A`), so an
exported file can be imported again. Members are read in key-ordered chunks and formatted column by column
(pandas), so a 300,000-member segment never sits in memory as Python rows all at once. A text cell that a
spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) is neutralised: in CSV
it gets a leading `'` (a CSV cell has no type), in Excel it is written as a text cell, unchanged, so a phone
`+49 30 1234` reads as written and `=1+1` is never evaluated.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import Connection, select

from ._browse import minimum_segment_size
from ._db import Database
from ._errors import NotFoundError, RefusedError, UsageError
from ._models import Contact, ContactCode, CustomValue, ProfileAnswer, Segment, SegmentMember
from .fields import LIST_FIELDS, FieldRegistry, fields_of, load_fields
from .imports.check import CONTACT_COLUMNS

__all__ = ["EXPORT_COLUMNS", "FORMATS", "check_exportable", "export_frames", "export_members", "export_rows", "neutralise"]

contacts = Contact.__table__
members = SegmentMember.__table__
codes = ContactCode.__table__
answers = ProfileAnswer.__table__
segments = Segment.__table__
custom_values = CustomValue.__table__

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
    """A CSV text cell a spreadsheet would evaluate (=, +, -, @, tab, CR first) gets a leading quote."""
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


@dataclass(frozen=True)
class _Layout:
    """The export's columns: the import columns, then every custom field by its name (so the file imports back)."""

    columns: tuple[str, ...]
    dates: frozenset[str]
    money: frozenset[str]
    integers: frozenset[str]
    booleans: frozenset[str]
    numbers: frozenset[str]

    @classmethod
    def of(cls, fields: FieldRegistry) -> _Layout:
        custom = fields.custom
        return cls(
            columns=EXPORT_COLUMNS + tuple(s.name for s in custom),
            dates=_DATES | {s.name for s in custom if s.type == "date"},
            money=_MONEY,
            integers=_INTEGERS | {s.name for s in custom if s.type == "number" and s.integer},
            booleans=_BOOLEANS | {s.name for s in custom if s.type == "boolean"},
            numbers=frozenset(s.name for s in custom if s.type == "number" and not s.integer),
        )


def export_frames(db: Database, no: str, *, progress: Progress | None = None) -> Iterator[pd.DataFrame]:
    """The members in chunks of rows, as typed frames with the export columns and custom fields, in contact order.

    Refuses (RefusedError) an empty segment or one under the minimum size at once, before any file is begun."""
    minimum = minimum_segment_size(db)
    with db.read() as conn:
        seg_id, size = _checked_segment(conn, no, minimum)
        fields = load_fields(conn)
    return _member_frames(db, seg_id, size, progress, fields)


def export_rows(db: Database, no: str, *, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """The same members one dict a row (None for empty), for callers that want rows."""
    frames = export_frames(db, no, progress=progress)

    def rows() -> Iterator[dict[str, Any]]:
        for frame in frames:
            yield from frame.astype(object).where(frame.notna(), None).to_dict("records")

    return rows()


def _member_frames(
    db: Database, seg_id: int, size: int, progress: Progress | None, fields: FieldRegistry
) -> Iterator[pd.DataFrame]:
    layout = _Layout.of(fields)
    by_id = {s.custom_id: s for s in fields.custom}
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
            if by_id:
                _custom_columns(conn, frame, ids, in_range, by_id, lists)
            yield frame[list(layout.columns)]
            last = hi
            done += len(frame)
            if progress:
                progress(done, size, "exporting")


def _custom_columns(
    conn: Connection, frame: pd.DataFrame, ids: list[int], in_range: Any, by_id: dict[Any, Any], lists: Any
) -> None:
    """Each custom field's value per member of the chunk (lists joined by ';', as the import reads them)."""
    values: dict[int, dict[int, Any]] = {}
    cv = custom_values
    rows = conn.execute(
        select(cv.c.contact_id, cv.c.field_id, cv.c.num, cv.c.txt, cv.c.day)
        .join(members, members.c.contact_id == cv.c.contact_id)
        .where(*in_range)
    ).all()
    for cid, fid, num, txt, day in rows:
        spec = by_id.get(fid)
        if spec is None:
            continue
        value = day if spec.type == "date" else (num if spec.type in ("number", "boolean") else txt)
        if spec.type == "date" and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        if spec.type == "boolean" and value is not None:
            value = bool(value)
        values.setdefault(fid, {})[cid] = value
    for fid, spec in by_id.items():
        if spec.type == "list":
            joined = lists.get(spec.code_kind, {})
            frame[spec.name] = [joined.get(i, "") for i in ids]
        else:
            got = values.get(fid, {})
            frame[spec.name] = [got.get(i) for i in ids]


def _neutralised(column: pd.Series) -> pd.Series:
    """CSV: text cells a spreadsheet would evaluate get a leading quote (vectorised neutralise)."""
    text = column.astype(object).where(column.notna(), "").astype(str)
    risky = text.str.startswith(_FORMULA_START)
    return text.where(~risky, "'" + text)


def _csv_frame(frame: pd.DataFrame, layout: _Layout) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for name in layout.columns:
        col = frame[name]
        if name in layout.dates:
            out[name] = col.map(lambda d: d.isoformat() if d is not None and d == d else "")
        elif name in layout.money:
            out[name] = col.map(lambda v: "" if v is None or v != v else f"{v:.2f}")
        elif name in layout.integers:
            out[name] = pd.to_numeric(col, errors="coerce").astype("Int64").astype(str).replace("<NA>", "")
        elif name in layout.booleans:
            out[name] = col.map(lambda v: "" if v is None or v != v else ("true" if v else "false"))
        elif name in layout.numbers:
            out[name] = col.map(lambda v: "" if v is None or v != v else repr(float(v)))
        else:
            out[name] = _neutralised(col)
    return out


def _to_csv(frames: Iterator[pd.DataFrame], layout: _Layout) -> bytes:
    buf = io.StringIO()
    buf.write(",".join(layout.columns) + "\r\n")
    for frame in frames:
        _csv_frame(frame, layout).to_csv(buf, header=False, index=False, lineterminator="\r\n")
    # UTF-8 with a BOM: Excel then shows accented names right, and the importer reads the BOM.
    return buf.getvalue().encode("utf-8-sig")


def _text_cell(ws: Any, value: str) -> WriteOnlyCell:
    """A cell holding `value` as text whatever it starts with: Excel shows it as written and never evaluates it."""
    cell = WriteOnlyCell(ws, value=value)
    # openpyxl reads a leading '=' as a formula; the cell type says text, so the value stays as typed (a phone
    # `+49 30 1234` reads `+49 30 1234`, not `'+49 ...`, and `=1+1` is those four characters).
    cell.data_type = "s"
    return cell


def _xlsx_rows(frame: pd.DataFrame, layout: _Layout, ws: Any) -> Iterator[tuple[Any, ...]]:
    # Numbers, dates and booleans stay typed; only text can carry a formula. Empty text is an empty cell.
    typed = frame.astype(object).where(frame.notna(), None)
    for name in layout.integers:
        # A column with an empty cell comes back as floats: write 4, not 4.0.
        whole = pd.to_numeric(frame[name], errors="coerce").astype("Int64")
        typed[name] = whole.astype(object).where(whole.notna(), None)
    typed_kinds = layout.dates | layout.money | layout.integers | layout.booleans | layout.numbers
    risky = np.zeros(len(frame), dtype=bool)
    for name in layout.columns:
        if name not in typed_kinds:
            column = frame[name]
            text = column.astype(object).where(column.notna(), "").astype(str)
            risky |= text.str.startswith(_FORMULA_START).to_numpy(dtype=bool)
            typed[name] = text.where(text != "", None)
    for i, row in enumerate(typed.itertuples(index=False, name=None)):
        if risky[i]:
            # Only text cells are str here (numbers, dates and booleans stay typed).
            row = tuple(_text_cell(ws, v) if isinstance(v, str) and v.startswith(_FORMULA_START) else v for v in row)
        yield row


def _to_xlsx(frames: Iterator[pd.DataFrame], title: str, layout: _Layout) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "Members")
    ws.append(list(layout.columns))
    for frame in frames:
        for row in _xlsx_rows(frame, layout, ws):
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
    layout = _Layout.of(fields_of(db))
    if fmt == "csv":
        return _to_csv(frames, layout)
    # Sheet titles cannot hold []:*?/\ ; segment numbers never do (letters, digits, - _ .).
    return _to_xlsx(frames, f"Segment {no}", layout)
