"""Export a segment's members with their contact fields to CSV or Excel (SPEC §3 Export).

The columns are the contacts import format (`CONTACT_COLUMNS`, lists joined with `;`, profile as `Q=A`), so an
exported file can be imported again. Members are read in key-ordered chunks, so a 300,000-member segment never
sits in memory as Python rows all at once. Any text cell that a spreadsheet would run as a formula (starting with
`=`, `+`, `-`, `@`, tab or carriage return) gets a leading `'`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from typing import Any

from openpyxl import Workbook
from sqlalchemy import Connection, select

from ._browse import minimum_segment_size
from ._db import Database
from ._errors import NotFoundError, RefusedError, UsageError
from ._fields import LIST_FIELDS
from ._importer import CONTACT_COLUMNS
from ._models import Contact, ContactCode, ProfileAnswer, Segment, SegmentMember

__all__ = ["EXPORT_COLUMNS", "FORMATS", "check_exportable", "export_members", "export_rows", "neutralise"]

contacts = Contact.__table__
members = SegmentMember.__table__
codes = ContactCode.__table__
answers = ProfileAnswer.__table__
segments = Segment.__table__

EXPORT_COLUMNS: tuple[str, ...] = tuple(CONTACT_COLUMNS)
FORMATS = ("csv", "xlsx")
_CHUNK = 20_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_DIRECT = tuple(c for c in EXPORT_COLUMNS if c in contacts.c)

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


def _joined(conn: Connection, stmt: Any) -> dict[int, dict[str, list[str]]]:
    out: dict[int, dict[str, list[str]]] = {}
    for cid, key, value in conn.execute(stmt).all():
        out.setdefault(cid, {}).setdefault(key, []).append(value)
    return out


def check_exportable(db: Database, no: str) -> int:
    """The member count when the segment may be exported; RefusedError (empty, or under the minimum) otherwise."""
    minimum = minimum_segment_size(db)
    with db.read() as conn:
        return _checked_segment(conn, no, minimum)[1]


def export_rows(db: Database, no: str, *, progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """The members' rows in the export columns, typed (dates, numbers, booleans), in contact row order.

    Refuses (RefusedError) an empty segment or one under the minimum size at once, before any file is begun."""
    minimum = minimum_segment_size(db)
    with db.read() as conn:
        seg_id, _size = _checked_segment(conn, no, minimum)
    return _member_rows(db, seg_id, progress)


def _member_rows(db: Database, seg_id: int, progress: Progress | None) -> Iterator[dict[str, Any]]:
    with db.read() as conn:
        size = int(conn.execute(select(segments.c.size).where(segments.c.id == seg_id)).scalar_one())
        last, done = -1, 0
        while True:
            # Keyset paging on the members key: each chunk is an index range, never a growing OFFSET.
            chunk = conn.execute(
                select(contacts.c.id, *[contacts.c[c] for c in _DIRECT])
                .join(members, members.c.contact_id == contacts.c.id)
                .where(members.c.segment_id == seg_id, members.c.contact_id > last)
                .order_by(members.c.contact_id)
                .limit(_CHUNK)
            ).mappings().all()
            if not chunk:
                break
            lo, hi = chunk[0]["id"], chunk[-1]["id"]
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
                select(answers.c.contact_id, answers.c.questionnaire, answers.c.answer)
                .join(members, members.c.contact_id == answers.c.contact_id)
                .where(*in_range)
                .order_by(answers.c.contact_id, answers.c.questionnaire, answers.c.answer),
            )
            for r in chunk:
                row = {c: r[c] for c in _DIRECT}
                own = lists.get(r["id"], {})
                for kind in LIST_FIELDS:
                    row[kind] = ";".join(own.get(kind, ()))
                answered = profile.get(r["id"], {})
                row["profile"] = ";".join(f"{q}={a}" for q, ans in answered.items() for a in ans)
                yield {c: row.get(c) for c in EXPORT_COLUMNS}
            last = hi
            done += len(chunk)
            if progress:
                progress(done, size, "exporting")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralise(str(value))


def _xlsx_cell(value: Any) -> Any:
    # Numbers, dates and booleans stay typed; only text can carry a formula.
    if isinstance(value, str):
        return neutralise(value)
    return value


def _to_csv(rows: Iterator[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row[c]) for c in EXPORT_COLUMNS])
    # UTF-8 with a BOM: Excel then shows accented names right, and the importer reads the BOM.
    return buf.getvalue().encode("utf-8-sig")


def _to_xlsx(rows: Iterator[dict[str, Any]], title: str) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "Members")
    ws.append(list(EXPORT_COLUMNS))
    for row in rows:
        ws.append([_xlsx_cell(row[c]) for c in EXPORT_COLUMNS])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_members(db: Database, no: str, fmt: str = "csv", *, progress: Progress | None = None) -> bytes:
    """The segment's members with their contact fields as a CSV or Excel file's bytes."""
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; use csv or xlsx")
    rows = export_rows(db, no, progress=progress)
    if fmt == "csv":
        return _to_csv(rows)
    # Sheet titles cannot hold []:*?/\ ; segment numbers never do (letters, digits, - _ .).
    return _to_xlsx(rows, f"Segment {no}")
