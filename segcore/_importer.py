"""Contact and interaction import (SPEC §1): read a CSV, check every rule column by column, write set-based.

The pipeline is the same for both files:
  read   bytes -> encoding (utf-8, utf-8-sig, cp1252) -> header (csv module) -> body (pyarrow, one pass, no Python
         loop per row) -> the line number of every row, also when quoted values hold line breaks;
  check  vectorised per column with pandas/pyarrow masks; every failing cell becomes a RowError; then the rules that
         need the database (company references, type changes, known contacts) inside the write transaction;
  write  ids for new contacts taken up front, so org_id (the company's id) is known before anything is written;
         then one upsert pass: on SQLite multi-row INSERT .. ON CONFLICT (contact_no) DO UPDATE statements run by
         the driver's executemany (values always bound), on PostgreSQL COPY into a TEMP staging table and one
         INSERT .. SELECT .. ON CONFLICT; list codes and profile answers of re-imported contacts deleted and
         inserted set-based. One transaction: a failed import changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    bindparam,
    cast,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import REGCLASS

from ._db import Database
from ._errors import ImportRejected, UsageError
from .fields import EVALUATIONS, LIST_FIELDS
from ._models import Base
from ._snapshot import bump_data_version

__all__ = [
    "CONTACT_COLUMNS",
    "CONTACT_FRAME_COLUMNS",
    "COUNTRY_CODES",
    "INTERACTION_COLUMNS",
    "INTERACTION_FRAME_COLUMNS",
    "LANGUAGE_CODES",
    "MAX_ERRORS_KEPT",
    "ContactBatch",
    "ImportReport",
    "Progress",
    "RowError",
    "check_contacts_against_db",
    "import_contacts",
    "import_interactions",
    "validate_contacts",
    "validate_interactions",
    "write_contacts",
    "write_interactions",
]

Progress = Callable[[int, int, str], None]
Source = str | os.PathLike[str] | bytes | bytearray | memoryview | Any

# ISO 3166-1 alpha-2: the 249 officially assigned codes.
COUNTRY_CODES: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO
    JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR
    MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO
    RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV
    TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()
)

# ISO 639-1: the 184 two-letter language codes.
LANGUAGE_CODES: frozenset[str] = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en
    eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv
    ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne
    ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st
    su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """.split()
)

# Keep the first errors only: a garbage file of a million rows must not build a million messages.
MAX_ERRORS_KEPT = 1000

CONTACT_REQUIRED = ("contact_no", "type", "name")
CONTACT_COLUMNS = (
    "contact_no", "type", "company_no", "name", "email", "phone", "city", "post_code", "territory", "salesperson",
    "country", "language", "gender", "birth_date", "acquisition_date", "last_purchase_date", "acquisition_source",
    "rating", "churn_risk", "total_spent", "purchase_count", "exclude_from_segments", *LIST_FIELDS, "profile",
)  # fmt: skip
# The columns of the frame write_contacts takes (validated and normalised; '' = empty for text and dates).
CONTACT_FRAME_COLUMNS = (
    "contact_no", "type", "company_no", "name", "email", "email_domain", "phone", "city", "post_code", "territory",
    "salesperson", "country", "language", "gender", "birth_date", "acquisition_date", "last_purchase_date",
    "acquisition_source", "rating", "churn_risk", "total_spent", "purchase_count", "exclude_from_segments",
    "attributes",
)  # fmt: skip
INTERACTION_REQUIRED = ("contact_no", "date", "template")
INTERACTION_COLUMNS = (
    "contact_no", "date", "template", "campaign_no", "segment_no", "evaluation", "salesperson", "cost", "duration_min",
)  # fmt: skip
INTERACTION_FRAME_COLUMNS = INTERACTION_COLUMNS

_NULLABLE_INT_COLUMNS = frozenset({"rating", "duration_min"})
_FLOAT_COLUMNS = frozenset({"total_spent", "cost"})
_NOT_NULL_TEXT = frozenset({"contact_no", "type", "name", "gender", "template"})

_CONTACTS: Table = Base.metadata.tables["contacts"]
_CODES: Table = Base.metadata.tables["contact_codes"]
_PROFILE: Table = Base.metadata.tables["profile_answers"]
_INTERACTIONS: Table = Base.metadata.tables["interactions"]

_EMAIL_RE = r"[^\s@,;:<>()\[\]\\\"]+@([^\s@,;:<>()\[\]\\\".]+\.)+[^\s@,;:<>()\[\]\\\".0-9]{2,}"
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}
_MAX_MONEY = 999_999_999_999.99
_MAX_INT = 2_147_483_647
_BOM = b"\xef\xbb\xbf"
_HEAD_BYTES = 1 << 20
_STAGE_CHUNK = 50_000
# From this many rows on, a load into SQLite rebuilds the secondary indexes instead of growing them.
_BULK_INDEX_ROWS = 50_000


# --------------------------------------------------------------------------------------------------------------------
# Values handed back


@dataclass(frozen=True)
class RowError:
    """One rejected cell or row: `line` is the line in the file (the header is line 1)."""

    line: int
    column: str
    reason: str
    value: str = ""

    @property
    def message(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.column else f"line {self.line}"
        return f"{where}: '{self.value}' {self.reason}" if self.value else f"{where}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason, "value": self.value}


@dataclass(frozen=True)
class ImportReport:
    """What an import found and did; for validate_*, inserted/updated say what an import would do."""

    kind: str
    encoding: str
    rows_total: int
    rows_valid: int
    rows_rejected: int
    inserted: int = 0
    updated: int = 0
    applied: bool = False
    unknown_columns: tuple[str, ...] = ()
    errors: tuple[RowError, ...] = ()
    errors_total: int = 0

    @property
    def errors_truncated(self) -> bool:
        return self.errors_total > len(self.errors)

    def summary(self) -> str:
        """One line for a person."""
        head = f"{self.kind}: {self.rows_total:,} rows read ({self.encoding}), {self.rows_valid:,} valid"
        head += f", {self.rows_rejected:,} rejected"
        if self.applied:
            head += f"; {self.inserted:,} inserted" + (
                f", {self.updated:,} updated" if self.kind == "contacts" else ""
            )
        else:
            head += "; nothing written"
        if self.unknown_columns:
            head += "; unknown columns kept as attributes: " + ", ".join(self.unknown_columns)
        return head

    def to_frame(self) -> pd.DataFrame:
        """The kept errors as a table (line, column, value, reason, message) for display."""
        return pd.DataFrame(
            {
                "line": [e.line for e in self.errors],
                "column": [e.column for e in self.errors],
                "value": [e.value for e in self.errors],
                "reason": [e.reason for e in self.errors],
                "message": [e.message for e in self.errors],
            },
            columns=["line", "column", "value", "reason", "message"],
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "kind": self.kind,
            "encoding": self.encoding,
            "rows_total": self.rows_total,
            "rows_valid": self.rows_valid,
            "rows_rejected": self.rows_rejected,
            "inserted": self.inserted,
            "updated": self.updated,
            "applied": self.applied,
            "unknown_columns": list(self.unknown_columns),
            "errors_total": self.errors_total,
            "errors_truncated": self.errors_truncated,
            "errors": [e.as_dict() for e in self.errors],
        }


@dataclass(frozen=True, eq=False)
class ContactBatch:
    """Validated contacts ready to write: one row per contact plus their list codes and profile answers.

    contacts has CONTACT_FRAME_COLUMNS (text and dates as str with '' for empty, rating Int64, total_spent float,
    purchase_count int, exclude_from_segments bool, attributes a JSON object text or ''); codes has contact_no, kind,
    code; profile has contact_no, questionnaire, answer; both may carry `pos`, the contact's row in `contacts`, which
    saves looking the number up. Contact numbers are unique.
    """

    contacts: pd.DataFrame
    codes: pd.DataFrame
    profile: pd.DataFrame


# --------------------------------------------------------------------------------------------------------------------
# Errors collected column by column


class _ErrorLog:
    """Failing cells gathered as small frames; turned into RowError values only for the first MAX_ERRORS_KEPT."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(
        self, lines: np.ndarray, column: str, reason: str | np.ndarray, values: np.ndarray | str = ""
    ) -> None:
        if len(lines) == 0:
            return
        self._parts.append(
            pd.DataFrame(
                {
                    "line": np.asarray(lines, dtype=np.int64),
                    "column": column,
                    "reason": reason,
                    "value": values,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame({"line": [], "column": [], "reason": [], "value": []})
        out = pd.concat(self._parts, ignore_index=True)
        return out.sort_values("line", kind="stable", ignore_index=True)

    def __bool__(self) -> bool:
        return bool(self._parts)


def _clip(value: Any) -> str:
    text = str(value).replace("\r", " ").replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def _row_errors(errors: pd.DataFrame) -> tuple[tuple[RowError, ...], int]:
    head = errors.head(MAX_ERRORS_KEPT)
    kept = tuple(
        RowError(int(line), str(column), str(reason), _clip(value))
        for line, column, reason, value in zip(
            head["line"], head["column"], head["reason"], head["value"], strict=True
        )
    )
    return kept, len(errors)


# --------------------------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True, eq=False)
class _Parsed:
    """A CSV file read: every column as stripped text, the line of each row, and whole-row errors."""

    kind: str
    encoding: str
    frame: pd.DataFrame  # known columns by their name, unknown ones by their header text
    lines: np.ndarray
    present: frozenset[str]
    unknown: tuple[str, ...]
    log: _ErrorLog
    ragged: int


def _load_bytes(source: Source) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"file not found: {path}") from None
        except IsADirectoryError:
            raise UsageError(f"{path} is a folder, not a file") from None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    read = getattr(source, "read", None)
    if read is None:
        raise UsageError("an import needs a file path, bytes or an open file")
    # An uploaded file may have been read once already (validate, then import).
    if getattr(source, "seekable", lambda: False)():
        source.seek(0)
    data = read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    return bytes(data)


def _decode(kind: str, data: bytes) -> tuple[str, bytes]:
    """The encoding found and the file as UTF-8 bytes without a BOM."""
    if data.startswith(_BOM):
        try:
            data[3:].decode("utf-8")
            return "utf-8-sig", data[3:]
        except UnicodeDecodeError:
            pass
    try:
        data.decode("utf-8")
        return "utf-8", data
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            f"the {kind} file is not text in UTF-8 or Windows-1252 (byte {exc.start + 1} fits neither)",
            _whole_file_report(kind, ""),
        ) from None
    return "cp1252", text.encode("utf-8")


def _whole_file_report(kind: str, encoding: str) -> ImportReport:
    return ImportReport(kind=kind, encoding=encoding, rows_total=0, rows_valid=0, rows_rejected=0)


def _read_header(kind: str, encoding: str, body: bytes) -> tuple[list[str], int, int]:
    """The header cells, the number of bytes and the number of lines they take (leading blank lines included)."""
    head = body[:_HEAD_BYTES].decode("utf-8", errors="ignore")
    buf = io.StringIO(head, newline="")
    reader = csv.reader(buf)
    try:
        cells: list[str] = []
        while not cells:
            cells = next(reader)
            if cells and not any(c.strip() for c in cells):
                cells = []
    except StopIteration:
        raise ImportRejected(f"the {kind} file is empty", _whole_file_report(kind, encoding)) from None
    except csv.Error as exc:
        raise ImportRejected(
            f"the {kind} file is not a CSV file: the header cannot be read ({exc})",
            _whole_file_report(kind, encoding),
        ) from None
    consumed = buf.tell()
    if consumed >= len(head) and len(body) > _HEAD_BYTES:
        raise ImportRejected(
            f"the {kind} file is not a CSV file: its first line is longer than a header can be",
            _whole_file_report(kind, encoding),
        )
    return cells, len(head[:consumed].encode("utf-8")), reader.line_num


def _map_header(
    kind: str, encoding: str, cells: list[str], known: Sequence[str], required: Sequence[str], first_line: str
) -> tuple[list[str], tuple[str, ...]]:
    """Frame names for the header cells (known names lower-cased) and the unknown columns as written."""
    known_set = set(known)
    names: list[str] = []
    unknown: list[str] = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells):
        text = cell.strip()
        low = text.lower()
        key = low if low in known_set else (text or f"column {i + 1}")
        if key.lower() in seen:
            raise ImportRejected(
                f"the header names column '{text}' twice (columns {seen[key.lower()] + 1} and {i + 1})",
                _whole_file_report(kind, encoding),
            )
        seen[key.lower()] = i
        names.append(key)
        if low not in known_set:
            unknown.append(key)
    missing = [c for c in required if c not in names]
    if missing:
        found = [n for n in names if n in known_set]
        hint = ""
        if len(cells) == 1 and (";" in first_line or "\t" in first_line):
            hint = "; the file seems to use ';' or tabs between values: save it comma-separated"
        if not found:
            raise ImportRejected(
                f"the first line is not a header of a {kind} file: it must name the columns "
                f"{', '.join(required)}{hint}",
                _whole_file_report(kind, encoding),
            )
        raise ImportRejected(
            f"the header lacks the required column{'s' if len(missing) > 1 else ''} {', '.join(missing)}{hint}",
            _whole_file_report(kind, encoding),
        )
    return names, tuple(unknown)


def _line_breaks(data: bytes, newline: bytes, start: int, end: int) -> int:
    return data.count(newline, start, end)


def _read_csv(
    kind: str, source: Source, known: Sequence[str], required: Sequence[str], progress: Progress | None
) -> _Parsed:
    data = _load_bytes(source)
    if not data or data.isspace():
        raise ImportRejected(f"the {kind} file is empty", _whole_file_report(kind, ""))
    sniff = data[:8192]
    if b"\x00" in sniff or sniff.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF")):
        raise ImportRejected(
            f"the {kind} file is not a CSV text file (it looks like a spreadsheet or another binary file): "
            "save it as CSV UTF-8",
            _whole_file_report(kind, ""),
        )
    encoding, body = _decode(kind, data)
    del data
    if b"\x00" in body:
        raise ImportRejected(
            f"the {kind} file is not a CSV text file (it holds binary data)",
            _whole_file_report(kind, encoding),
        )
    cells, header_bytes, header_lines = _read_header(kind, encoding, body)
    first_line = body[:header_bytes].decode("utf-8", errors="ignore")
    names, unknown = _map_header(kind, encoding, cells, known, required, first_line)
    rest = body[header_bytes:]
    if not rest or rest.isspace():
        raise ImportRejected(
            f"the {kind} file has a header but no rows below it", _whole_file_report(kind, encoding)
        )
    if progress:
        progress(0, 1, "reading")

    ncols = len(names)
    bad_rows: list[tuple[int, str]] = []

    def on_bad_row(row: Any) -> str:
        bad_rows.append((int(row.actual_columns), str(row.text)))
        return "skip"

    tmp_names = [f"c{i}" for i in range(ncols)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(rest),
            read_options=pacsv.ReadOptions(column_names=tmp_names, use_threads=False, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=on_bad_row
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.large_string() for n in tmp_names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImportRejected(
            f"the {kind} file cannot be read as CSV ({reason[:160]})", _whole_file_report(kind, encoding)
        ) from None

    newline = b"\n" if b"\n" in body else b"\r"
    _check_quotes(kind, encoding, rest, table)
    first = header_lines + 1
    nrows = table.num_rows
    # Each row takes one line plus the line breaks inside its quoted values.
    spans = np.ones(nrows, dtype=np.int64)
    physical = rest.count(newline) + (0 if rest.endswith(newline) else 1) if b'"' in rest else 0
    if b'"' in rest and physical != nrows + len(bad_rows):
        nl = newline.decode()
        for col in table.columns:
            if pc.any(pc.match_substring(col, nl)).as_py():
                spans += pc.count_substring(col, nl).to_numpy(zero_copy_only=False).astype(np.int64)
    log = _ErrorLog()
    if not bad_rows:
        lines = first + np.concatenate(([0], np.cumsum(spans)[:-1])) if nrows else np.zeros(0, dtype=np.int64)
    else:
        lines = _lines_around_bad_rows(rest, newline, first, spans, bad_rows, ncols, log)

    # Values are trimmed in pyarrow (pandas' str.strip falls back to Python for some text).
    table = pa.table([_unquoted(pc.utf8_trim_whitespace(col)) for col in table.columns], names=tmp_names)
    frame = table.to_pandas()
    frame.columns = names
    # Blank lines (and lines of commas only) are not rows: only rows whose first value is empty can be blank.
    blank = (frame[names[0]] == "").to_numpy().copy()
    for name in names[1:]:
        if not blank.any():
            break
        candidates = np.flatnonzero(blank)
        blank[candidates] = (frame[name].iloc[candidates] == "").to_numpy()
    if blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    lines = np.asarray(lines, dtype=np.int64)
    for name in known:
        if name not in frame.columns:
            frame[name] = pd.Series("", index=frame.index, dtype="str")
    if len(frame) == 0 and not bad_rows:
        raise ImportRejected(
            f"the {kind} file has a header but no rows below it", _whole_file_report(kind, encoding)
        )
    if progress:
        progress(len(frame), len(frame), "reading")
    return _Parsed(
        kind=kind,
        encoding=encoding,
        frame=frame,
        lines=lines,
        present=frozenset(n for n in names if n in known),
        unknown=unknown,
        log=log,
        ragged=len(bad_rows),
    )


def _unquoted(col: Any) -> Any:
    """Undo our export's formula guard: a leading quote before = + - @ tab or CR goes, so an exported file comes
    back as it was stored (a phone number '+33…' stays +33…). Only columns that hold such a quote pay for the regex."""
    if not pc.any(pc.starts_with(col, "'")).as_py():
        return col
    return pc.replace_substring_regex(col, pattern="^'([=+\\-@\t\r])", replacement="\\1")


def _check_quotes(kind: str, encoding: str, rest: bytes, table: pa.Table) -> None:
    """Refuse a file whose last value opens a quote that never closes: it swallowed the lines after it."""
    if table.num_rows == 0:
        return
    last = [str(col[-1].as_py() or "") for col in table.columns]
    if any("\n" in v or "\r" in v for v in last) and rest.count(b'"') % 2:
        raise ImportRejected(
            f'the {kind} file cannot be read as CSV: a quote (") opens a value that never ends',
            _whole_file_report(kind, encoding),
        )


def _lines_around_bad_rows(
    rest: bytes,
    newline: bytes,
    first: int,
    spans: np.ndarray,
    bad_rows: list[tuple[int, str]],
    ncols: int,
    log: _ErrorLog,
) -> np.ndarray:
    """Line numbers of the good rows once the rows of the wrong width (reported here) are placed in the file."""
    # pyarrow hands the skipped rows over in file order with their text but not their position: find each one as a
    # whole line after the previous one.
    pos = 0
    counted_to = 0
    breaks = 0
    taken: list[np.ndarray] = []
    bad_lines: list[int] = []
    for _actual, text in bad_rows:
        needle = text.encode("utf-8")
        found = -1
        while needle:
            i = rest.find(needle, pos)
            if i < 0:
                break
            end = i + len(needle)
            starts_line = i == 0 or rest[i - 1 : i] in (b"\n", b"\r")
            ends_line = end == len(rest) or rest[end : end + 1] in (b"\n", b"\r")
            if starts_line and ends_line:
                found = i
                break
            pos = i + 1
        if found < 0:
            bad_lines.append(0)
            continue
        breaks += _line_breaks(rest, newline, counted_to, found)
        counted_to = found
        line = first + breaks
        span = 1 + needle.count(newline)
        taken.append(np.arange(line, line + span))
        bad_lines.append(line)
        pos = found + len(needle)
    log.add(
        np.array(bad_lines, dtype=np.int64),
        "",
        np.array(
            [f"has {a} values where the header has {ncols} columns" for a, _t in bad_rows], dtype=object
        ),
        np.array([t for _a, t in bad_rows], dtype=object),
    )
    occupied = np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)
    total = int(spans.sum()) + len(occupied)
    free = np.setdiff1d(np.arange(first, first + total, dtype=np.int64), occupied, assume_unique=True)
    if len(spans) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(spans)[:-1]))
    return free[np.minimum(starts, len(free) - 1)]


# --------------------------------------------------------------------------------------------------------------------
# Column checks (vectorised: one mask per rule, never a Python loop per row)


class _Checker:
    """Runs the rules on one parsed frame and remembers which rows failed."""

    def __init__(self, parsed: _Parsed) -> None:
        self.frame = parsed.frame
        self.lines = parsed.lines
        self.log = parsed.log
        self.bad = np.zeros(len(parsed.frame), dtype=bool)
        self.lengths: dict[str, int | None] = {}

    def fail(self, mask: Any, column: str, reason: str | np.ndarray, values: Any = None) -> None:
        m = np.asarray(mask, dtype=bool)
        if not m.any():
            return
        self.bad |= m
        if values is None:
            vals: Any = self.frame[column][m].to_numpy(dtype=object)
        elif isinstance(values, str):
            vals = values
        else:
            vals = np.asarray(values, dtype=object)[m]
        reasons = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)[m]
        self.log.add(self.lines[m], column, reasons, vals)

    def col(self, name: str) -> pd.Series:
        return self.frame[name]

    def required(self, name: str) -> None:
        self.fail(self.col(name) == "", name, "a value is required", "")

    def max_length(self, name: str, limit: int | None) -> None:
        if limit:
            self.fail(self.col(name).str.len() > limit, name, f"is longer than {limit} characters")

    def choice(
        self, name: str, choices: Iterable[str], *, lower: bool = True, empty: str | None = ""
    ) -> pd.Series:
        """The column normalised; values outside `choices` are errors."""
        s = self.col(name)
        norm = s.str.lower() if lower else s.str.upper()
        allowed = sorted(choices)
        ok = norm.isin(allowed) | (norm == "")
        self.fail(~ok, name, "is not one of " + ", ".join(allowed))
        return norm if empty in (None, "") else norm.where(norm != "", empty)

    def date(self, name: str) -> pd.Series:
        s = self.col(name)
        filled = (s != "").to_numpy()
        shaped = s.str.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").to_numpy() & filled
        self.fail(filled & ~shaped, name, "is not a date in the form YYYY-MM-DD")
        real = np.ones(len(s), dtype=bool)
        if shaped.any():
            parts = _arrow(s[shaped])
            y, m, d = (
                _numbers(pc.utf8_slice_codeunits(parts, a, b), pa.int64())
                for a, b in ((0, 4), (5, 7), (8, 10))
            )
            leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
            month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(m, 0, 12)]
            month_days = month_days + ((m == 2) & leap)
            ok = (y >= 1) & (m >= 1) & (m <= 12) & (d >= 1) & (d <= month_days)
            real[np.flatnonzero(shaped)] = ok
        self.fail(~real, name, "is not a real date")
        return s

    def integer(self, name: str, lo: int, hi: int, reason: str) -> pd.Series:
        """The column as nullable Int64; empty stays NA."""
        s = self.col(name)
        filled = (s != "").to_numpy()
        digits = s.str.fullmatch(r"[+-]?[0-9]{1,12}").to_numpy() & filled
        self.fail(filled & ~digits, name, f"is not a whole number ({reason})")
        out = pd.Series(pd.NA, index=s.index, dtype="Int64")
        if digits.any():
            values = _numbers(_arrow(s[digits]), pa.int64())
            out[digits] = values
            in_range = (values >= lo) & (values <= hi)
            wrong = np.zeros(len(s), dtype=bool)
            wrong[np.flatnonzero(digits)] = ~in_range
            self.fail(wrong, name, reason)
        return out

    def decimal(self, name: str) -> pd.Series:
        """A decimal >= 0 as float; empty is NaN."""
        s = self.col(name)
        filled = (s != "").to_numpy()
        shaped = s.str.fullmatch(r"[+-]?([0-9]{1,15}(\.[0-9]*)?|\.[0-9]+)").to_numpy() & filled
        self.fail(filled & ~shaped, name, "is not a number (use a dot for decimals, e.g. 12.50)")
        out = pd.Series(np.nan, index=s.index, dtype="float64")
        if shaped.any():
            values = _numbers(_arrow(s[shaped]), pa.float64())
            out[shaped] = values.round(2)
            neg = np.zeros(len(s), dtype=bool)
            neg[np.flatnonzero(shaped)] = values < 0
            self.fail(neg, name, "must be 0 or more")
            big = np.zeros(len(s), dtype=bool)
            big[np.flatnonzero(shaped)] = values > _MAX_MONEY
            self.fail(big, name, "is too large")
        return out

    def codes(self, name: str, limit: int | None, sep: str = ";") -> tuple[np.ndarray, pd.Series]:
        """Split a `;` list: (row positions, item text stripped), empties dropped."""
        s = self.col(name)
        filled = np.flatnonzero((s != "").to_numpy())
        if len(filled) == 0:
            return np.zeros(0, dtype=np.int64), pd.Series([], dtype="str")
        arr = _arrow(s.iloc[filled])
        parts = pc.split_pattern(arr, sep)
        parents = filled[pc.list_parent_indices(parts).to_numpy()]
        items = pd.Series(pc.list_flatten(parts).to_pandas(), dtype="str").str.strip()
        keep = (items != "").to_numpy()
        return parents[keep], items[keep].reset_index(drop=True)


def _numbers(arr: pa.Array, type_: pa.DataType) -> np.ndarray:
    """Text already checked to be a number, converted by pyarrow (pandas' astype goes through Python objects)."""
    return np.asarray(pc.cast(arr, type_).to_numpy(zero_copy_only=False))


def _arrow(s: pd.Series) -> pa.Array:
    """The pyarrow array behind a text column (no copy for pandas' pyarrow-backed str dtype)."""
    arr = pa.array(s.astype("str"), type=pa.large_string())
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _fullmatch(s: pd.Series, pattern: str) -> np.ndarray:
    """Which values match `pattern` whole, computed by pyarrow (RE2) instead of Python's re, row by row."""
    arr = _arrow(s)
    return np.asarray(
        pc.match_substring_regex(arr, f"^(?:{pattern})$").to_numpy(zero_copy_only=False), dtype=bool
    )


def _regex_group(s: pd.Series, pattern: str) -> pd.Series:
    """The group named g of `pattern` in each value ('' when it does not match), computed by pyarrow."""
    arr = _arrow(s)
    found = pc.extract_regex(arr, pattern).field("g")
    return pd.Series(pc.fill_null(found, "").to_pandas(), index=s.index, dtype="str")


def _text_length(table: Table, name: str) -> int | None:
    column = table.c.get(name)
    return getattr(column.type, "length", None) if column is not None else None


# --------------------------------------------------------------------------------------------------------------------
# Contacts: the per-file rules


@dataclass(frozen=True, eq=False)
class _CheckedContacts:
    parsed: _Parsed
    frame: pd.DataFrame  # CONTACT_FRAME_COLUMNS for every row (valid or not), normalised
    bad: np.ndarray
    codes: pd.DataFrame  # row, kind, code
    profile: pd.DataFrame  # row, questionnaire, answer


def _check_contact_fields(parsed: _Parsed) -> _CheckedContacts:
    ck = _Checker(parsed)
    f = parsed.frame
    n = len(f)
    out: dict[str, Any] = {}
    for name in ("contact_no", "name"):
        ck.required(name)
        ck.max_length(name, _text_length(_CONTACTS, name))
        out[name] = f[name]
    ck.required("type")
    out["type"] = ck.choice("type", ("company", "person"))
    for name in ("company_no", "phone", "city", "post_code"):
        ck.max_length(name, _text_length(_CONTACTS, name))
        out[name] = f[name]
    for name in ("territory", "salesperson"):
        ck.max_length(name, _text_length(_CONTACTS, name))
        out[name] = f[name].str.upper()
    ck.max_length("acquisition_source", _text_length(_CONTACTS, "acquisition_source"))
    out["acquisition_source"] = f["acquisition_source"].str.lower()

    company = (out["type"] == "company").to_numpy()
    ck.fail(company & (f["company_no"] != "").to_numpy(), "company_no", "must be empty for a company")

    email = f["email"].str.lower()
    filled = (email != "").to_numpy()
    looks = _fullmatch(email, _EMAIL_RE)
    ck.fail(filled & ~looks, "email", "is not an e-mail address")
    ck.max_length("email", _text_length(_CONTACTS, "email"))
    out["email"] = email
    domain = _regex_group(email, r"@(?P<g>.*)$")
    out["email_domain"] = domain.where(pd.Series(filled & looks, index=f.index), "")

    country = f["country"].str.upper()
    ck.fail(
        ~(country.isin(sorted(COUNTRY_CODES)) | (country == "")).to_numpy(),
        "country",
        "is not a country code (ISO 3166-1 alpha-2, e.g. FR)",
    )
    out["country"] = country
    language = f["language"].str.lower()
    ck.fail(
        ~(language.isin(sorted(LANGUAGE_CODES)) | (language == "")).to_numpy(),
        "language",
        "is not a language code (ISO 639-1, e.g. fr)",
    )
    out["language"] = language
    out["gender"] = ck.choice("gender", ("female", "male", "other", "unknown"), empty="unknown")
    for name in ("birth_date", "acquisition_date", "last_purchase_date"):
        out[name] = ck.date(name)
    out["rating"] = ck.integer("rating", 1, 5, "must be a whole number from 1 to 5")
    out["churn_risk"] = ck.choice("churn_risk", ("high", "low", "medium"))
    spent = ck.decimal("total_spent")
    out["total_spent"] = spent.fillna(0.0).clip(lower=0.0)
    count = ck.integer("purchase_count", 0, _MAX_INT, "must be a whole number, 0 or more")
    out["purchase_count"] = count.fillna(0).clip(lower=0).astype("int64")
    excl = f["exclude_from_segments"].str.lower()
    ck.fail(
        ~excl.isin(sorted(_BOOLEANS)).to_numpy(),
        "exclude_from_segments",
        "is not one of true, false, yes, no, 1, 0",
    )
    out["exclude_from_segments"] = pd.Series(
        excl.isin([k for k, v in _BOOLEANS.items() if v]).to_numpy(), index=f.index
    )

    code_parts: list[pd.DataFrame] = []
    code_limit = _text_length(_CODES, "code")
    for kind in LIST_FIELDS:
        rows, items = ck.codes(kind, code_limit)
        codes = items.str.upper()
        too_long = codes.str.len().to_numpy() > (code_limit or 1 << 30)
        if too_long.any():
            mask = np.zeros(n, dtype=bool)
            mask[rows[too_long]] = True
            reason = f"holds a code longer than {code_limit} characters"
            ck.fail(mask, kind, reason)
        kinds = pd.Series(kind, index=codes.index, dtype="str")
        code_parts.append(pd.DataFrame({"row": rows, "kind": kinds, "code": codes}))
    # Repeated codes of one contact stay here: the write path drops them with one integer sort.
    codes_frame = pd.concat(code_parts, ignore_index=True)

    rows, items = ck.codes("profile", None)
    q = _regex_group(items, r"^(?P<g>[^=]*)=").str.strip().str.upper()
    a = _regex_group(items, r"^[^=]*=(?P<g>.*)$").str.strip().str.upper()
    malformed = ((q == "") | (a == "")).to_numpy()
    q_limit, a_limit = _text_length(_PROFILE, "questionnaire") or 30, _text_length(_PROFILE, "answer") or 60
    if malformed.any():
        mask = np.zeros(n, dtype=bool)
        mask[rows[malformed]] = True
        firsts = pd.Series(items[malformed].to_numpy(), index=rows[malformed])
        firsts = firsts[~firsts.index.duplicated()]
        values = np.full(n, "", dtype=object)
        values[firsts.index.to_numpy()] = firsts.to_numpy()
        ck.fail(mask, "profile", "is not QUESTIONNAIRE=ANSWER", values)
    long_pair = ((q.str.len() > q_limit) | (a.str.len() > a_limit)).to_numpy()
    if long_pair.any():
        mask = np.zeros(n, dtype=bool)
        mask[rows[long_pair]] = True
        ck.fail(
            mask, "profile", f"holds a questionnaire over {q_limit} or an answer over {a_limit} characters"
        )
    keep = ~malformed
    profile_frame = pd.DataFrame(
        {
            "row": rows[keep],
            "questionnaire": q[keep].reset_index(drop=True),
            "answer": a[keep].reset_index(drop=True),
        }
    )

    out["attributes"] = _attributes(parsed)

    # A contact number seen before in the file: the first line wins, every later one is rejected.
    cn = f["contact_no"]
    # Numbers in ascending order (a sorted export) are unique; else hash them once in pyarrow. pandas' duplicated()
    # only runs when there is a duplicate to place.
    numbers = _arrow(cn)
    ascending = len(cn) < 2 or bool(pc.all(pc.greater(numbers[1:], numbers[:-1])).as_py())
    if not ascending and pc.count_distinct(numbers).as_py() < len(cn):
        dup = (cn.duplicated(keep="first") & (cn != "")).to_numpy()
    else:
        dup = np.zeros(len(cn), dtype=bool)
    if dup.any():
        first_line = pd.Series(parsed.lines, index=f.index).groupby(cn.to_numpy()).transform("first")
        reasons = "already appears on line " + first_line.astype(str)
        ck.fail(dup, "contact_no", reasons.to_numpy())

    frame = pd.DataFrame({name: out[name] for name in CONTACT_FRAME_COLUMNS})
    return _CheckedContacts(parsed=parsed, frame=frame, bad=ck.bad, codes=codes_frame, profile=profile_frame)


def _attributes(parsed: _Parsed) -> pd.Series:
    """Unknown columns as one JSON object per row ('' when the row has none of them)."""
    f = parsed.frame
    out = pd.Series("", index=f.index, dtype="str")
    if not parsed.unknown:
        return out
    sub = f[list(parsed.unknown)]
    filled = np.zeros(len(f), dtype=bool)
    for name in parsed.unknown:
        filled |= (sub[name] != "").to_numpy()
    idx = np.flatnonzero(filled)
    if len(idx):
        records = sub.iloc[idx].to_dict("records")
        texts = [json.dumps({k: v for k, v in r.items() if v != ""}, ensure_ascii=False) for r in records]
        out.iloc[idx] = texts
    return out


# --------------------------------------------------------------------------------------------------------------------
# Contacts: the rules that need the database


def _db_contacts(conn: Connection) -> pd.DataFrame:
    rows = conn.execute(select(_CONTACTS.c.contact_no, _CONTACTS.c.type, _CONTACTS.c.company_no)).all()
    frame = pd.DataFrame(rows, columns=["contact_no", "type", "company_no"])
    return frame.astype({"contact_no": "str", "type": "str"}).assign(
        company_no=frame["company_no"].fillna("")
    )


def check_contacts_against_db(
    conn: Connection, frame: pd.DataFrame, lines: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame, int]:
    """Apply the rules that need stored data; returns (valid mask, errors, how many valid rows exist already).

    A person's company_no must name a company (in the file or stored); a company that would keep persons cannot
    become a person. Rejecting one row can make another one right or wrong, so both rules run until nothing changes.
    """
    log = _ErrorLog()
    valid = valid.copy()
    stored = _db_contacts(conn)
    cn = frame["contact_no"]
    ftype = frame["type"].to_numpy()
    fcomp = frame["company_no"]
    stored_type = stored.set_index("contact_no")["type"]
    db_type = (
        cn.map(stored_type).fillna("").to_numpy() if len(stored) else np.full(len(frame), "", dtype=object)
    )
    first_line = pd.Series(lines, index=cn.to_numpy())
    first_line = first_line[~first_line.index.duplicated()]
    while True:
        changed = False
        # 1. A stored company turned into a person while persons still point at it.
        turning = valid & (ftype == "person") & (db_type == "company")
        if turning.any():
            targets = cn[turning]
            file_valid = pd.Index(cn[valid])
            db_persons = stored[
                (stored["type"] == "person")
                & stored["company_no"].isin(targets)
                & ~stored["contact_no"].isin(file_valid)
            ]
            file_persons = frame.loc[valid & (ftype == "person") & fcomp.isin(targets).to_numpy()]
            holders = pd.concat(
                [db_persons[["company_no", "contact_no"]], file_persons[["company_no", "contact_no"]]]
            ).drop_duplicates("company_no")
            holder = cn.map(holders.set_index("company_no")["contact_no"])
            stuck = turning & holder.notna().to_numpy()
            if stuck.any():
                reasons = (
                    "still has persons (e.g. " + holder[stuck].astype(str) + "), so it cannot become a person"
                )
                log.add(lines[stuck], "type", reasons.to_numpy(), "person")
                valid &= ~stuck
                changed = True
        # 2. A person's company must be a company after the import.
        wants = valid & (ftype == "person") & (fcomp != "").to_numpy()
        if wants.any():
            file_type = pd.Series(ftype[valid], index=cn[valid].to_numpy())
            target = fcomp[wants]
            in_file = target.map(file_type)
            in_db = target.map(stored_type) if len(stored) else pd.Series(np.nan, index=target.index)
            effective = pd.Series(
                np.where(
                    in_file.notna().to_numpy(), in_file.to_numpy(dtype=object), in_db.to_numpy(dtype=object)
                ),
                index=target.index,
                dtype=object,
            )
            wrong = (effective != "company").to_numpy()
            if wrong.any():
                eff = effective[wrong]
                tgt = target[wrong]
                rejected_line = tgt.map(first_line)
                reasons = np.where(
                    eff.to_numpy() == "person",
                    "is a person, not a company",
                    np.where(
                        rejected_line.notna().to_numpy(),
                        "is the company on line "
                        + rejected_line.fillna(0).astype(int).astype(str)
                        + ", which is rejected",
                        "is not a known company",
                    ),
                )
                mask = np.zeros(len(frame), dtype=bool)
                mask[np.flatnonzero(wants)[wrong]] = True
                log.add(lines[mask], "company_no", reasons, tgt.to_numpy())
                valid &= ~mask
                changed = True
        if not changed:
            break
    existing = int(np.count_nonzero(valid & (db_type != ""))) if len(stored) else 0
    return valid, log.frame(), existing


# --------------------------------------------------------------------------------------------------------------------
# Contacts: public API


def _batch(checked: _CheckedContacts, valid: np.ndarray) -> ContactBatch:
    contacts = checked.frame.loc[valid].reset_index(drop=True)
    # A row's position among the valid rows is its position in the batch.
    pos_of_row = np.cumsum(valid) - 1
    cn = checked.frame["contact_no"]

    def keep(part: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
        rows = part["row"].to_numpy()
        mask = valid[rows]
        rows = rows[mask]
        out = {"contact_no": cn.iloc[rows].reset_index(drop=True), "pos": pos_of_row[rows]}
        out.update({c: part[c][mask].reset_index(drop=True) for c in cols})
        return pd.DataFrame(out)

    return ContactBatch(
        contacts=contacts,
        codes=keep(checked.codes, ("kind", "code")),
        profile=keep(checked.profile, ("questionnaire", "answer")),
    )


def _report(
    parsed: _Parsed, errors: pd.DataFrame, valid_rows: int, *, inserted: int, updated: int, applied: bool
) -> ImportReport:
    kept, total = _row_errors(errors)
    rows_total = len(parsed.frame) + parsed.ragged
    return ImportReport(
        kind=parsed.kind,
        encoding=parsed.encoding,
        rows_total=rows_total,
        rows_valid=valid_rows,
        rows_rejected=rows_total - valid_rows,
        inserted=inserted,
        updated=updated,
        applied=applied,
        unknown_columns=parsed.unknown,
        errors=kept,
        errors_total=total,
    )


def _all_errors(*frames: pd.DataFrame) -> pd.DataFrame:
    parts = [f for f in frames if len(f)]
    if not parts:
        return pd.DataFrame({"line": [], "column": [], "reason": [], "value": []})
    return pd.concat(parts, ignore_index=True).sort_values("line", kind="stable", ignore_index=True)


def _refuse(report: ImportReport, strict: bool) -> None:
    if report.rows_valid == 0:
        raise ImportRejected(
            f"nothing imported: none of the {report.rows_total:,} rows of the {report.kind} file is valid",
            report,
        )
    if strict and report.rows_rejected:
        raise ImportRejected(
            f"nothing imported: {report.rows_rejected:,} of {report.rows_total:,} rows have errors "
            "(strict mode imports nothing when any row is wrong)",
            report,
        )


def validate_contacts(db: Database, source: Source, *, progress: Progress | None = None) -> ImportReport:
    """Check a contacts file against every rule and the stored data; writes nothing."""
    checked = _check_contact_fields(
        _read_csv("contacts", source, CONTACT_COLUMNS, CONTACT_REQUIRED, progress)
    )
    with db.read() as conn:
        valid, db_errors, existing = check_contacts_against_db(
            conn, checked.frame, checked.parsed.lines, ~checked.bad
        )
    nvalid = int(valid.sum())
    return _report(
        checked.parsed,
        _all_errors(checked.parsed.log.frame(), db_errors),
        nvalid,
        inserted=nvalid - existing,
        updated=existing,
        applied=False,
    )


def import_contacts(
    db: Database, source: Source, *, strict: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Import (insert or update) contacts; strict: any error -> ImportRejected and nothing written."""
    checked = _check_contact_fields(
        _read_csv("contacts", source, CONTACT_COLUMNS, CONTACT_REQUIRED, progress)
    )
    if progress:
        progress(len(checked.frame), len(checked.frame), "checking")
    with db.write() as conn:
        valid, db_errors, _existing = check_contacts_against_db(
            conn, checked.frame, checked.parsed.lines, ~checked.bad
        )
        errors = _all_errors(checked.parsed.log.frame(), db_errors)
        nvalid = int(valid.sum())
        _refuse(_report(checked.parsed, errors, nvalid, inserted=0, updated=0, applied=False), strict)
        inserted, updated = write_contacts(conn, _batch(checked, valid), progress=progress)
    return _report(checked.parsed, errors, nvalid, inserted=inserted, updated=updated, applied=True)


# --------------------------------------------------------------------------------------------------------------------
# Interactions


@dataclass(frozen=True, eq=False)
class _CheckedInteractions:
    parsed: _Parsed
    frame: pd.DataFrame
    bad: np.ndarray


def _check_interaction_fields(parsed: _Parsed) -> _CheckedInteractions:
    ck = _Checker(parsed)
    f = parsed.frame
    out: dict[str, Any] = {}
    for name in INTERACTION_REQUIRED:
        ck.required(name)
    out["contact_no"] = f["contact_no"]
    out["date"] = ck.date("date")
    for name in ("template", "salesperson"):
        ck.max_length(name, _text_length(_INTERACTIONS, name))
        out[name] = f[name].str.upper()
    for name in ("campaign_no", "segment_no"):
        ck.max_length(name, _text_length(_INTERACTIONS, name))
        out[name] = f[name]
    out["evaluation"] = ck.choice("evaluation", EVALUATIONS)
    out["cost"] = ck.decimal("cost")
    out["duration_min"] = ck.integer(
        "duration_min", 0, _MAX_INT, "must be a whole number of minutes, 0 or more"
    )
    frame = pd.DataFrame({name: out[name] for name in INTERACTION_FRAME_COLUMNS})
    return _CheckedInteractions(parsed=parsed, frame=frame, bad=ck.bad)


def _check_interactions_db(
    conn: Connection, checked: _CheckedInteractions
) -> tuple[np.ndarray, pd.DataFrame]:
    known = pd.Index(pd.Series(conn.execute(select(_CONTACTS.c.contact_no)).scalars().all(), dtype="str"))
    cn = checked.frame["contact_no"]
    unknown = ~checked.bad & (cn != "").to_numpy() & ~cn.isin(known).to_numpy()
    log = _ErrorLog()
    log.add(
        checked.parsed.lines[unknown], "contact_no", "is not a known contact number", cn.to_numpy()[unknown]
    )
    return ~checked.bad & ~unknown, log.frame()


def validate_interactions(db: Database, source: Source, *, progress: Progress | None = None) -> ImportReport:
    """Check an interactions file against every rule and the stored contacts; writes nothing."""
    checked = _check_interaction_fields(
        _read_csv("interactions", source, INTERACTION_COLUMNS, INTERACTION_REQUIRED, progress)
    )
    with db.read() as conn:
        valid, db_errors = _check_interactions_db(conn, checked)
    nvalid = int(valid.sum())
    errors = _all_errors(checked.parsed.log.frame(), db_errors)
    return _report(checked.parsed, errors, nvalid, inserted=nvalid, updated=0, applied=False)


def import_interactions(
    db: Database, source: Source, *, strict: bool = False, progress: Progress | None = None
) -> ImportReport:
    """Append interactions to the log; strict: any error -> ImportRejected and nothing written."""
    checked = _check_interaction_fields(
        _read_csv("interactions", source, INTERACTION_COLUMNS, INTERACTION_REQUIRED, progress)
    )
    if progress:
        progress(len(checked.frame), len(checked.frame), "checking")
    with db.write() as conn:
        valid, db_errors = _check_interactions_db(conn, checked)
        errors = _all_errors(checked.parsed.log.frame(), db_errors)
        nvalid = int(valid.sum())
        _refuse(_report(checked.parsed, errors, nvalid, inserted=0, updated=0, applied=False), strict)
        inserted = write_interactions(
            conn, checked.frame.loc[valid].reset_index(drop=True), created_by="import", progress=progress
        )
    return _report(checked.parsed, errors, nvalid, inserted=inserted, updated=0, applied=True)


# --------------------------------------------------------------------------------------------------------------------
# The write path (shared with the demo loader)


def _db_values(frame: pd.DataFrame, name: str) -> list[Any]:
    """One column as Python values for the driver: '' and NA become None (NULL) except in required text."""
    s = frame[name]
    if name in _NULLABLE_INT_COLUMNS or name == "org_id":
        values = s.astype("Int64")
        return values.astype(object).where(values.notna(), None).tolist()
    if name in _FLOAT_COLUMNS:
        floats = s.astype("float64").round(2)
        return floats.astype(object).where(floats.notna(), None).tolist()
    if name in ("purchase_count", "contact_id"):
        return s.astype("int64").tolist()
    if name == "exclude_from_segments":
        return s.astype(bool).tolist()
    text = s.fillna("").astype("str")
    if name in _NOT_NULL_TEXT:
        return text.tolist()
    return text.astype(object).where(text != "", None).tolist()


def _chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while True:
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return
        yield chunk


def _sqlite_rows_per_statement(ncols: int) -> int:
    # Several rows per INSERT cut SQLite's per-statement work; stay under its bound-parameter limit.
    import sqlite3

    limit = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
    return max(1, min(200, limit // max(ncols, 1)))


def _executemany(
    conn: Connection,
    build: Callable[[list[dict[str, Any]]], Any],
    names: Sequence[str],
    columns: Sequence[list[Any]],
    progress: Progress | None,
    stage: str,
) -> None:
    """Run an INSERT for every row: raw multi-row executemany on SQLite, Core executemany elsewhere.

    `build` makes the statement from its VALUES rows (dicts of bind parameters). Values are always bound
    parameters; the SQL text comes from SQLAlchemy and our own table definitions.
    """
    total = len(columns[0]) if columns else 0
    done = 0
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and raw is not None:
        # Put the columns in the order SQLAlchemy renders them, so each statement's parameters are plain slices.
        probe = build([{n: bindparam(f"{n}__0") for n in names}]).compile(dialect=conn.dialect)
        rendered = [p.rsplit("__", 1)[0] for p in (probe.positiontup or [])]
        if sorted(rendered) == sorted(names):
            columns = [columns[list(names).index(n)] for n in rendered]
            names = rendered
        per = _sqlite_rows_per_statement(len(names))
        statements: dict[int, tuple[str, list[int]]] = {}

        def compiled(k: int) -> tuple[str, list[int]]:
            if k not in statements:
                rows: list[dict[str, Any]] = [{n: bindparam(f"{n}__{i}") for n in names} for i in range(k)]
                comp = build(rows).compile(dialect=conn.dialect)
                keys = [f"{n}__{i}" for i in range(k) for n in names]
                position = {key: j for j, key in enumerate(keys)}
                statements[k] = (str(comp), [position[p] for p in (comp.positiontup or [])])
            return statements[k]

        ncols = len(names)
        cur = raw.cursor()
        try:
            for start in range(0, total, _STAGE_CHUNK):
                end = min(total, start + _STAGE_CHUNK)
                count = end - start
                # Row-major parameters built column by column with slice assignment: no tuple per row.
                flat: list[Any] = [None] * (count * ncols)
                for j, values in enumerate(columns):
                    flat[j::ncols] = values[start:end]
                full = count // per
                step = per * ncols
                if full:
                    sql, order = compiled(per)
                    if order == list(range(step)):
                        cur.executemany(sql, (flat[i * step : (i + 1) * step] for i in range(full)))
                    else:
                        cur.executemany(sql, ([flat[i * step + j] for j in order] for i in range(full)))
                rest = count - full * per
                if rest:
                    sql, order = compiled(rest)
                    tail = flat[full * step :]
                    cur.execute(sql, [tail[j] for j in order])
                done += count
                if progress:
                    progress(done, total, stage)
        finally:
            cur.close()
        return
    statement = build([{n: bindparam(n) for n in names}])
    for chunk in _chunks(zip(*columns, strict=True), _STAGE_CHUNK):
        conn.execute(statement, [dict(zip(names, row, strict=True)) for row in chunk])
        done += len(chunk)
        if progress:
            progress(done, total, stage)


def _insert_rows(
    conn: Connection,
    table: Table,
    names: Sequence[str],
    columns: Sequence[list[Any]],
    progress: Progress | None = None,
    stage: str = "",
) -> None:
    """Bulk insert: COPY on PostgreSQL, executemany elsewhere."""
    if not columns or not len(columns[0]):
        return
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql" and raw is not None:
        from psycopg import sql

        total = len(columns[0])
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(n) for n in names)
        )
        done = 0
        with raw.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in zip(*columns, strict=True):
                copy.write_row(row)
                done += 1
                if progress and done % _STAGE_CHUNK == 0:
                    progress(done, total, stage)
        if progress:
            progress(total, total, stage)
        return
    _executemany(conn, lambda rows: table.insert().values(rows), names, columns, progress, stage)


def _temp_table(conn: Connection, name: str, columns: Sequence[Column[Any]]) -> Table:
    table = Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])
    table.create(conn)
    return table


def _insert_dialect(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    raise UsageError(f"importing into a {conn.dialect.name} database is not supported yet")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _upsert_contacts(
    conn: Connection,
    names: Sequence[str],
    columns: Sequence[list[Any]],
    progress: Progress | None,
    stage: str,
) -> None:
    """INSERT .. ON CONFLICT (contact_no) DO UPDATE every column given but the id, which a stored contact keeps."""
    c = _CONTACTS
    insert = _insert_dialect(conn)
    keep = ("contact_no", "id")
    if conn.dialect.name == "sqlite":
        # Multi-row upserts straight from the driver: cheaper on SQLite than staging the rows first.
        def build(rows: list[dict[str, Any]]) -> Any:
            stmt = insert(c).values(rows)
            return stmt.on_conflict_do_update(
                index_elements=[c.c.contact_no], set_={n: stmt.excluded[n] for n in names if n not in keep}
            )

        _executemany(conn, build, names, columns, progress, stage)
        return
    stage_t = _temp_table(conn, "segcore_stage_contacts", [Column(n, c.c[n].type) for n in names])
    _insert_rows(conn, stage_t, names, columns, progress, stage)
    stmt = insert(c).from_select(list(names), select(*(stage_t.c[n] for n in names)))
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.c.contact_no], set_={n: stmt.excluded[n] for n in names if n not in keep}
    )
    conn.execute(stmt)
    stage_t.drop(conn)


def _stored_contacts(conn: Connection) -> pd.DataFrame:
    """contact_no, id and type of every stored contact, indexed by contact_no."""
    raw = conn.exec_driver_sql("SELECT contact_no, id, type FROM contacts").fetchall()
    frame = pd.DataFrame(raw, columns=["contact_no", "id", "type"])
    frame = frame.astype({"contact_no": "str", "id": "int64", "type": "str"})
    return frame.set_index("contact_no")


def _new_ids(conn: Connection, count: int) -> np.ndarray:
    """Ids for `count` new contacts, taken the way the database would take them."""
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if conn.dialect.name == "postgresql":
        seq = conn.exec_driver_sql("SELECT pg_get_serial_sequence('contacts', 'id')").scalar_one()
        got = conn.execute(
            select(func.nextval(cast(literal(seq), REGCLASS))).select_from(func.generate_series(1, count))
        ).scalars()
        return np.sort(np.fromiter(got, dtype=np.int64, count=count))
    # SQLite: the write transaction holds the lock, and a rowid table takes max(id) + 1 for a new row anyway.
    top = conn.execute(select(func.max(_CONTACTS.c.id))).scalar_one()
    start = int(top or 0) + 1
    return np.arange(start, start + count, dtype=np.int64)


def _ids(conn: Connection) -> pd.Series:
    """contact_no -> id of every stored contact."""
    stored = _stored_contacts(conn)
    return stored["id"]


def _roomy_cache(conn: Connection, rows: int) -> None:
    """Give a big SQLite load a page cache that holds the whole transaction, so dirty pages never spill mid-way."""
    if conn.dialect.name != "sqlite" or rows < _BULK_INDEX_ROWS:
        return
    kib = int(min(4 << 20, max(256 << 10, rows * 2)))
    current = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    if current < 0 and -current >= kib:
        return
    conn.exec_driver_sql(f"PRAGMA cache_size = {-kib:d}")


@contextmanager
def _bulk_indexes(conn: Connection, tables: Sequence[Table], rows: int, stored: int) -> Iterator[None]:
    """For a big load into SQLite, drop the secondary indexes and build them again once the rows are in.

    Building an index from sorted rows is several times faster than growing it row by row. DDL is transactional in
    SQLite, so a failed import gets its indexes back with the rollback; readers keep seeing the old snapshot.
    """
    if conn.dialect.name != "sqlite" or rows < _BULK_INDEX_ROWS or rows < stored:
        yield
        return
    indexes = [ix for t in tables for ix in sorted(t.indexes, key=lambda i: i.name or "")]
    for ix in indexes:
        ix.drop(conn)
    yield
    for ix in indexes:
        ix.create(conn)


def _keyed_rows(
    frame: pd.DataFrame, cols: Sequence[str], numbers: np.ndarray, ids: np.ndarray
) -> tuple[list[str], list[str], list[int]]:
    """Code rows (two key columns + contact_id) without duplicates, in primary-key order, as driver values.

    Integer keys instead of string columns: the factorised codes sort like the strings, so one integer sort both
    drops duplicates and orders the rows, and rows in key order fill the primary-key index by appending.
    """
    # The contact's position in the batch: given by the importer and the demo, else looked up by number.
    if "pos" in frame.columns:
        pos = frame["pos"].to_numpy(dtype=np.int64)
    else:
        pos = pd.Index(numbers).get_indexer(frame["contact_no"].to_numpy())
    if len(pos) and (pos.min() < 0 or pos.max() >= len(numbers)):
        raise ImportRejected("list codes or profile answers name a contact that is not in the batch")
    a_codes, a_labels = pd.factorize(frame[cols[0]].astype("str"), sort=True)
    b_codes, b_labels = pd.factorize(frame[cols[1]].astype("str"), sort=True)
    contact_id = ids[pos]
    span = int(contact_id.max()) + 1
    key = (a_codes.astype(np.int64) * len(b_labels) + b_codes) * span + contact_id
    key = np.sort(key)
    key = key[np.r_[True, key[1:] != key[:-1]]]
    contact_id = key % span
    pair = key // span
    first = np.asarray(a_labels, dtype=object)[pair // len(b_labels)]
    second = np.asarray(b_labels, dtype=object)[pair % len(b_labels)]
    return first.tolist(), second.tolist(), contact_id.tolist()


def write_contacts(
    conn: Connection, batch: ContactBatch, *, progress: Progress | None = None
) -> tuple[int, int]:
    """Insert or update validated contacts, their org_id, list codes and profile answers; returns (inserted, updated).

    Runs inside the caller's write transaction (db.write()). New contacts get their ids up front, so org_id (the
    company's id) is known before anything is written and every contact goes in one upsert pass; a re-imported
    contact keeps its id and gets the batch's codes and answers instead of its stored ones.
    """
    contacts = batch.contacts
    total = len(contacts)
    if total == 0:
        return 0, 0
    # Same transaction as the rows: the in-memory preview snapshot must be rebuilt after this commits.
    bump_data_version(conn)
    if contacts["contact_no"].duplicated().any():
        raise ImportRejected("the contacts to write hold the same contact number twice")
    c = _CONTACTS
    had_rows = conn.execute(select(c.c.id).limit(1)).first() is not None
    stored = (
        _stored_contacts(conn) if had_rows else pd.DataFrame({"id": [], "type": []}).astype({"id": "int64"})
    )
    numbers = contacts["contact_no"].to_numpy()
    old_id = stored["id"].reindex(numbers) if had_rows else pd.Series(np.nan, index=numbers)
    known = old_id.notna().to_numpy()
    existing = int(known.sum())
    ids = np.zeros(total, dtype=np.int64)
    ids[known] = old_id.to_numpy()[known].astype(np.int64)
    ids[~known] = _new_ids(conn, total - existing)
    id_of = pd.Series(ids, index=numbers)

    is_company = (contacts["type"] == "company").to_numpy()
    # org_id: a company's own id, a person's company's id (in the batch, else stored), NULL without a company.
    company_id = pd.concat([stored["id"][stored["type"] == "company"], id_of[is_company]])
    company_id = company_id[~company_id.index.duplicated(keep="last")]
    org = contacts["company_no"].map(company_id).astype("Int64").to_numpy(dtype=object, na_value=None)
    org[is_company] = ids[is_company]

    if existing:
        ids_t = _temp_table(conn, "segcore_stage_ids", [Column("id", Integer, primary_key=True)])
        _insert_rows(conn, ids_t, ["id"], [ids[known].tolist()])
        for table in (_CODES, _PROFILE):
            conn.execute(delete(table).where(table.c.contact_id.in_(select(ids_t.c.id))))
        ids_t.drop(conn)

    stamp = _now()
    processor = c.c.updated_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    now_value = processor(stamp) if processor else stamp
    _roomy_cache(conn, total + len(stored))
    with _bulk_indexes(conn, (c, _CODES, _PROFILE), total, len(stored)):
        names = ["id", *CONTACT_FRAME_COLUMNS, "org_id", "updated_at"]
        columns = [ids.tolist(), *(_db_values(contacts, n) for n in CONTACT_FRAME_COLUMNS), org.tolist(),
                   [now_value] * total]  # fmt: skip
        _upsert_contacts(conn, names, columns, progress, "writing contacts")
        if had_rows:
            # Stored persons outside the batch follow their company: keep every org_id right, set-based.
            c2 = c.alias("company")
            their_company = (
                select(c2.c.id)
                .where(c2.c.contact_no == c.c.company_no, c2.c.type == "company")
                .scalar_subquery()
            )
            conn.execute(
                update(c)
                .where(c.c.type == "person", c.c.org_id.is_distinct_from(their_company))
                .values(org_id=their_company)
            )
        if progress:
            progress(total, total, "writing contacts")
        for table, frame, cols in (
            (_CODES, batch.codes, ["kind", "code"]),
            (_PROFILE, batch.profile, ["questionnaire", "answer"]),
        ):
            if len(frame) == 0:
                continue
            first, second, contact_id = _keyed_rows(frame, cols, numbers, ids)
            _insert_rows(
                conn,
                table,
                [*cols, "contact_id"],
                [first, second, contact_id],
                progress,
                f"writing {table.name.replace('_', ' ')}",
            )
    return total - existing, existing


def write_interactions(
    conn: Connection,
    frame: pd.DataFrame,
    *,
    created_by: str | None = None,
    progress: Progress | None = None,
) -> int:
    """Append validated interactions (INTERACTION_FRAME_COLUMNS; every contact_no must exist); returns how many."""
    if len(frame) == 0:
        return 0
    bump_data_version(conn)
    _roomy_cache(conn, len(frame))
    ids = _ids(conn)
    contact_id = ids.reindex(frame["contact_no"].to_numpy())
    if contact_id.isna().any():
        missing = frame["contact_no"][contact_id.isna().to_numpy()].iloc[0]
        raise ImportRejected(f"interaction for an unknown contact: {missing}")
    names = ["contact_id", *INTERACTION_FRAME_COLUMNS[1:], "cancelled", "created_by"]
    columns = [contact_id.astype("int64").tolist()]
    columns += [_db_values(frame, n) for n in INTERACTION_FRAME_COLUMNS[1:]]
    columns += [[False] * len(frame), [created_by] * len(frame)]
    stored = conn.execute(select(func.count()).select_from(_INTERACTIONS)).scalar_one()
    with _bulk_indexes(conn, (_INTERACTIONS,), len(frame), int(stored)):
        _insert_rows(conn, _INTERACTIONS, names, columns, progress, "writing interactions")
    if progress:
        progress(len(frame), len(frame), "writing interactions")
    return len(frame)
