"""Export a segment's members with their contact fields to CSV or Excel (SPEC §3 Export).

The columns are the contacts import format (`CONTACT_COLUMNS`, lists joined with `;`, profile as `Q=A`), so an
exported file can be imported again. Members are read in key-ordered chunks and formatted column by column
(pandas), so a 300,000-member segment never sits in memory as Python rows all at once. A text cell that a
spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) is neutralised: in CSV
it gets a leading `'` (a CSV cell has no type), in Excel it is written as a text cell, unchanged, so a phone
`+49 30 1234` reads as written and `=1+1` is never evaluated.

A logged segment is exported by group, so its control group never leaks into a mailing by accident (issue 14):
`treated` (the members that were contacted, the default), `control` (the held-out members only) or `all` (every
member, with a last column `group` saying treated or control). The groups come from the logged snapshot
(`logged_segment_members.holdout`). A segment that is not logged has no groups: it exports all its members, and
asking it for a group is a UsageError. The minimum segment size applies to the rows the file would hold.
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
from ._models import (
    Contact,
    ContactCode,
    CustomValue,
    LoggedSegment,
    LoggedSegmentMember,
    ProfileAnswer,
    Segment,
    SegmentMember,
    SourceContact,
    table_of,
)
from ._words import plural
from .auth.audit import record
from .auth.identity import current_user
from .auth.roles import require
from .evaluation import source_for
from .fields import LIST_FIELDS, FieldRegistry, load_fields
from .imports.check import CONTACT_COLUMNS

__all__ = [
    "EXPORT_COLUMNS",
    "EXPORT_GROUPS",
    "EXPORT_GROUP_LABELS",
    "FORMATS",
    "GROUP_COLUMN",
    "ExportScope",
    "check_exportable",
    "export_frames",
    "export_members",
    "export_rows",
    "export_scope",
    "neutralise",
]

contacts = Contact.__table__
members = SegmentMember.__table__
codes = ContactCode.__table__
answers = ProfileAnswer.__table__
segments = Segment.__table__
custom_values = CustomValue.__table__
logged = LoggedSegment.__table__
logged_mem = LoggedSegmentMember.__table__

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

# Which members of a logged segment a file holds; the labels are what a screen offers.
EXPORT_GROUPS = ("treated", "control", "all")
EXPORT_GROUP_LABELS = {
    "treated": "contacted members only",
    "control": "control group only",
    "all": "all with a group column",
}
GROUP_COLUMN = "group"
_FILE_SUFFIX = {None: "", "treated": "-treated", "control": "-control", "all": "-all-groups"}


def neutralise(value: str) -> str:
    """A CSV text cell a spreadsheet would evaluate (=, +, -, @, tab, CR first) gets a leading quote."""
    return "'" + value if value.startswith(_FORMULA_START) else value


@dataclass(frozen=True)
class ExportScope:
    """What an export of a segment holds: which group (None for a segment that is not logged) and how many rows.

    `holdout_count` is the control group's size (0 when not logged, or logged without a holdout)."""

    segment_no: str
    group: str | None
    count: int
    logged: bool
    holdout_count: int

    @property
    def label(self) -> str:
        """"contacted members only", "control group only", "all with a group column", or "all members"."""
        return EXPORT_GROUP_LABELS[self.group] if self.group is not None else "all members"

    def file_name(self, fmt: str) -> str:
        """A file name that says which group the file holds: segment-S1-treated.csv, segment-S1-control.xlsx,
        segment-S1-all-groups.csv; segment-S1.csv for a segment that is not logged."""
        return f"segment-{self.segment_no}{_FILE_SUFFIX[self.group]}.{(fmt or '').lower().lstrip('.')}"


@dataclass(frozen=True)
class _Source:
    """The rows to export: a membership table (segment or logged snapshot), its conditions, the group column."""

    table: sa.FromClause
    where: tuple[sa.ColumnElement[bool], ...]
    group_column: bool
    origin: str | None = None  # the contact source of a segment built over one (its fields are read from Spark)


def _clean_group(group: str | None) -> str | None:
    if group is None:
        return None
    text = str(group).strip().lower()
    if text not in EXPORT_GROUPS:
        raise UsageError(f"unknown export group {group!r}; use {', '.join(EXPORT_GROUPS[:-1])} or {EXPORT_GROUPS[-1]}")
    return text


def _checked_scope(conn: Connection, no: str, group: str | None, minimum: int) -> tuple[ExportScope, _Source]:
    group = _clean_group(group)
    row = conn.execute(
        select(segments.c.id, segments.c.size, segments.c.status, segments.c.source).where(segments.c.no == no)
    ).first()
    if row is None:
        raise NotFoundError(f"no segment {no!r}")
    rec = conn.execute(
        select(logged.c.id, logged.c.member_count, logged.c.holdout_count).where(logged.c.segment_id == row.id)
    ).first()
    if rec is None:
        if group is not None:
            raise UsageError(
                f"segment {no} is {row.status}, not logged: it has no treated or control group; export it without one"
            )
        scope = ExportScope(no, None, int(row.size), False, 0)
        source = _Source(members, (members.c.segment_id == row.id,), False, row.source)
    else:
        group = group or "treated"
        held = int(rec.holdout_count)
        counts = {"treated": int(rec.member_count) - held, "control": held, "all": int(rec.member_count)}
        if group == "control" and held == 0:
            raise RefusedError(f"segment {no} was logged without a holdout: it has no control group to export")
        scope = ExportScope(no, group, counts[group], True, held)
        flag = {
            "treated": (logged_mem.c.holdout.is_(False),),
            "control": (logged_mem.c.holdout.is_(True),),
            "all": (),
        }[group]
        source = _Source(logged_mem, (logged_mem.c.logged_id == rec.id, *flag), group == "all", row.source)
    if scope.count == 0:
        raise RefusedError(f"segment {no} has no members to export")
    if scope.count < minimum:
        # SPEC §3: a small segment cannot be exported (it could single people out); the same for a small group.
        if scope.group == "control":
            what = f"the control group of segment {no} has {plural(scope.count, 'member')}"
        elif scope.group == "treated":
            what = f"segment {no} has {plural(scope.count, 'contacted member')}"
        else:
            what = f"segment {no} has {plural(scope.count, 'member')}"
        raise RefusedError(f"{what}, fewer than the minimum of {minimum:,}: it cannot be exported")
    return scope, source


def _joined(conn: Connection, stmt: Any) -> dict[str, dict[int, str]]:
    """(contact id, key, value) rows, sorted by the SQL, as {key: {contact id: "v1;v2"}}.

    A plain loop: pandas' groupby-join calls Python once per group anyway, with more overhead per call."""
    grouped: dict[str, dict[int, list[str]]] = {}
    for cid, key, value in conn.execute(stmt).all():
        grouped.setdefault(key, {}).setdefault(cid, []).append(value)
    return {key: {cid: ";".join(values) for cid, values in by_id.items()} for key, by_id in grouped.items()}


def export_scope(db: Database, no: str, group: str | None = None) -> ExportScope:
    """What exporting segment `no` with `group` would write (group, row count, a file name), or why it cannot.

    `group` is for a logged segment: "treated" (the contacted members; what None means for a logged segment),
    "control" (the control group only) or "all" (every member, with a `group` column). A segment that is not logged
    has no groups: None exports all its members, any group is a UsageError. RefusedError when the rows to write are
    none (an empty segment, a control group of a log without holdout) or fewer than the minimum segment size."""
    minimum = minimum_segment_size(db)
    with db.read() as conn:
        return _checked_scope(conn, no, group, minimum)[0]


def check_exportable(db: Database, no: str, group: str | None = None) -> int:
    """How many rows the export would hold when it may be made (see `export_scope`); RefusedError otherwise."""
    return export_scope(db, no, group).count


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
    def of(cls, fields: FieldRegistry, *, group_column: bool = False) -> _Layout:
        custom = fields.custom
        return cls(
            columns=EXPORT_COLUMNS + tuple(s.name for s in custom) + ((GROUP_COLUMN,) if group_column else ()),
            dates=_DATES | {s.name for s in custom if s.type == "date"},
            money=_MONEY,
            integers=_INTEGERS | {s.name for s in custom if s.type == "number" and s.integer},
            booleans=_BOOLEANS | {s.name for s in custom if s.type == "boolean"},
            numbers=frozenset(s.name for s in custom if s.type == "number" and not s.integer),
        )


def export_frames(
    db: Database,
    no: str,
    *,
    group: str | None = None,
    progress: Progress | None = None,
    user: str | None = None,
) -> Iterator[pd.DataFrame]:
    """The rows to export in chunks, as typed frames with the export columns and custom fields, in contact order
    (and a last column `group`, treated or control, when `group` is "all"). `group` as in `export_scope`.

    Refuses (RefusedError / UsageError) at once, before any file is begun: also when `user` (default: the current
    user) may not export the segment (a marketer exports their own, a manager anyone's)."""
    return _prepared(db, no, group, progress, _who(user))[1]


def _who(user: str | None) -> str:
    return user if user is not None else current_user()


def _require_export(conn: Connection, user: str, no: str) -> None:
    """Refuse unless `user` may export segment `no` (their own: segment.export; another's: segment.export_any)."""
    owner = conn.execute(select(segments.c.owner).where(segments.c.no == no)).scalar()
    # No such segment: _checked_scope says so; the permission is still checked first (a viewer learns nothing more).
    require(conn, user, "segment.export", owner=owner)


def _prepared(
    db: Database, no: str, group: str | None, progress: Progress | None, user: str
) -> tuple[ExportScope, Iterator[pd.DataFrame], _Layout]:
    minimum = minimum_segment_size(db)
    with db.read() as conn:
        _require_export(conn, user, no)
        scope, source = _checked_scope(conn, no, group, minimum)
        fields = load_fields(conn)
        spark = source_for(conn, source.origin) if source.origin is not None else None
    if spark is not None:
        # The source's own fields (its custom ones are not this database's), read from Spark chunk by chunk.
        layout = _Layout.of(spark.fields, group_column=source.group_column)
        return scope, _source_frames(db, source, scope.count, progress, layout, spark), layout
    layout = _Layout.of(fields, group_column=source.group_column)
    return scope, _member_frames(db, source, scope.count, progress, fields, layout), layout


def export_rows(
    db: Database,
    no: str,
    *,
    group: str | None = None,
    progress: Progress | None = None,
    user: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The same rows one dict a row (None for empty), for callers that want rows."""
    frames = export_frames(db, no, group=group, progress=progress, user=user)

    def rows() -> Iterator[dict[str, Any]]:
        for frame in frames:
            yield from frame.astype(object).where(frame.notna(), None).to_dict("records")

    return rows()


def _member_frames(
    db: Database, source: _Source, size: int, progress: Progress | None, fields: FieldRegistry, layout: _Layout
) -> Iterator[pd.DataFrame]:
    by_id = {s.custom_id: s for s in fields.custom}
    mem = source.table
    extra = [mem.c.holdout] if source.group_column else []
    with db.read() as conn:
        last, done = -1, 0
        while True:
            # Keyset paging on the membership key: each chunk is an index range, never a growing OFFSET.
            rows = conn.execute(
                select(contacts.c.id, *[contacts.c[c] for c in _DIRECT], *extra)
                .join(mem, mem.c.contact_id == contacts.c.id)
                .where(*source.where, mem.c.contact_id > last)
                .order_by(mem.c.contact_id)
                .limit(_CHUNK)
            ).all()
            if not rows:
                break
            # Plain tuples: pandas probes each SQLAlchemy Row for attributes, which is slow on 50,000 rows.
            names = ["id", *_DIRECT] + (["holdout"] if extra else [])
            frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=names)
            lo, hi = int(frame["id"].iloc[0]), int(frame["id"].iloc[-1])
            in_range = (*source.where, mem.c.contact_id.between(lo, hi))
            lists = _joined(
                conn,
                select(codes.c.contact_id, codes.c.kind, codes.c.code)
                .join(mem, mem.c.contact_id == codes.c.contact_id)
                .where(*in_range)
                .order_by(codes.c.contact_id, codes.c.kind, codes.c.code),
            )
            profile = _joined(
                conn,
                select(answers.c.contact_id, sa.literal("profile"), answers.c.questionnaire + "=" + answers.c.answer)
                .join(mem, mem.c.contact_id == answers.c.contact_id)
                .where(*in_range)
                .order_by(answers.c.contact_id, answers.c.questionnaire, answers.c.answer),
            )
            ids = frame["id"].tolist()
            for name, src in [(k, lists) for k in LIST_FIELDS] + [("profile", profile)]:
                joined = src.get(name, {})
                frame[name] = [joined.get(i, "") for i in ids]
            if by_id:
                _custom_columns(conn, frame, ids, mem, in_range, by_id, lists)
            if extra:
                frame[GROUP_COLUMN] = np.where(frame["holdout"].astype(bool), "control", "treated")
            yield frame[list(layout.columns)]
            last = hi
            done += len(frame)
            if progress:
                progress(done, size, "exporting")


def _source_frames(
    db: Database, source: _Source, size: int, progress: Progress | None, layout: _Layout, spark: Any
) -> Iterator[pd.DataFrame]:
    """The rows of a segment over a source: its members' numbers from here, their fields from Spark."""
    numbers = table_of(SourceContact)
    mem = source.table
    extra = [mem.c.holdout] if source.group_column else []
    with db.read() as conn:
        picked = conn.execute(
            select(numbers.c.contact_no, *extra)
            .join(numbers, numbers.c.id == mem.c.contact_id)
            .where(*source.where)
            .order_by(numbers.c.contact_no)
        ).all()
    done = 0
    for start in range(0, len(picked), _CHUNK):
        chunk = picked[start : start + _CHUNK]
        nos = [str(r[0]) for r in chunk]
        direct, lists, custom = spark.export_values(nos, _DIRECT)
        frame = pd.DataFrame.from_records(
            [tuple(direct.get(n, {}).get(c) for c in _DIRECT) for n in nos], columns=list(_DIRECT)
        )
        frame["contact_no"] = nos  # a member the source no longer holds keeps its number
        for name in layout.columns:
            if name in lists or name in (*LIST_FIELDS, "profile"):
                frame[name] = [lists.get(name, {}).get(n, "") for n in nos]
            elif name in custom:
                frame[name] = [custom[name].get(n) for n in nos]
            elif name not in frame and name != GROUP_COLUMN:
                frame[name] = None
        if extra:
            frame[GROUP_COLUMN] = np.where([bool(r[1]) for r in chunk], "control", "treated")
        yield frame[list(layout.columns)]
        done += len(frame)
        if progress:
            progress(done, size, "exporting")


def _custom_columns(
    conn: Connection, frame: pd.DataFrame, ids: list[int], mem: sa.FromClause, in_range: Any, by_id: dict[Any, Any],
    lists: Any,
) -> None:
    """Each custom field's value per member of the chunk (lists joined by ';', as the import reads them)."""
    values: dict[int, dict[int, Any]] = {}
    cv = custom_values
    rows = conn.execute(
        select(cv.c.contact_id, cv.c.field_id, cv.c.num, cv.c.txt, cv.c.day)
        .join(mem, mem.c.contact_id == cv.c.contact_id)
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


def export_members(
    db: Database,
    no: str,
    fmt: str = "csv",
    *,
    group: str | None = None,
    progress: Progress | None = None,
    user: str | None = None,
) -> bytes:
    """The segment's members with their contact fields as a CSV or Excel file's bytes.

    For a logged segment, `group` chooses who: "treated" (the contacted members, also what None gives), "control"
    (the control group only) or "all" (every member with a last column `group`, treated or control), so the control
    group never goes out unless asked for by name. A segment that is not logged has no groups: None exports all
    its members, and any group is a UsageError. `export_scope(db, no, group)` tells the group, the row count and a
    file name naming the group (segment-S1-treated.csv) without writing anything. An Excel sheet is titled with
    the group too.

    `user` (default: the current user) exports their own segments as a marketer, anyone's as a manager; the
    export writes one audit row (who, which segment, which group, how many rows), committed once the file is made."""
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; use csv or xlsx")
    user = _who(user)
    scope, frames, layout = _prepared(db, no, group, progress, user)
    if fmt == "csv":
        data = _to_csv(frames, layout)
    else:
        # Sheet titles cannot hold []:*?/\ ; segment numbers never do (letters, digits, - _ .).
        title = f"Segment {no}" + (f" {scope.group}" if scope.group else "")
        data = _to_xlsx(frames, title, layout)
    with db.write() as conn:
        # Checked again in the transaction that records it: the role may have changed while the file was made.
        _require_export(conn, user, no)
        record(
            conn, user, "segment.export", f"segment {no}",
            f"{plural(scope.count, 'row')} ({scope.label}) as {fmt}",
            after=f"group {scope.group}" if scope.group else None,
        )
    return data
