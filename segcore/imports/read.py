"""Import stage 1 of read → map → check → write: any reasonable file as a table of text cells.

A CSV (comma, semicolon, tab or pipe separated; UTF-8 with or without BOM, UTF-16, Windows-1252 and its Western
cousins) or an Excel workbook (.xlsx) becomes a `RawTable`: the header as written, one text column per header cell and
the line of every row, so later stages can say "line 12412, column email". Nothing here knows fields or column names.

CSV:   bytes -> encoding (BOM, UTF-16 NUL pattern, strict UTF-8, else charset_normalizer's proposals judged by how
       many unlikely characters each reading holds, cp1252 by default) -> UTF-8 -> delimiter (csv.Sniffer, checked
       for a consistent field count) -> header (csv module) -> body (pyarrow, one pass, no Python loop per row) ->
       the line of every row, also when quoted values hold line breaks or rows of the wrong width were skipped.
Excel: openpyxl in read-only mode; cells become the text a person sees (dates as YYYY-MM-DD, 12 not 12.0).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import math
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .._errors import ImportRejected, UsageError
from .._words import plural

__all__ = ["DELIMITERS", "RawTable", "load_bytes", "read_table"]

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | Any

# The separators a CSV may use, in the order preferred when two fit equally well.
DELIMITERS = (",", ";", "\t", "|")

# The header must end within the first MiB: a longer "first line" is not a header but a file that is not CSV.
_HEAD_BYTES = 1 << 20
_SNIFF_LINES = 50
_SNIFF_CHARS = 1 << 16
# charset_normalizer judges at most this much of the lines that hold non-ASCII bytes.
_SAMPLE_BYTES = 1 << 16

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: FF FE 00 00 starts with the UTF-16 LE BOM
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Files that are certainly not text; a ZIP is tried as a workbook first.
_BINARY_MAGIC = (
    b"\xd0\xcf\x11\xe0",  # OLE2: old .xls, .doc
    b"%PDF",
    b"\x1f\x8b",  # gzip
    b"\x89PNG",
    b"\xff\xd8\xff",  # JPEG
    b"GIF8",
    b"7z\xbc\xaf",
    b"Rar!",
    b"PK\x05\x06",  # empty ZIP
    b"PK\x07\x08",  # spanned ZIP
)
# The single-byte code pages charset_normalizer may propose: the Western ones a CSV export really uses.
_SINGLE_BYTE = ("cp1252", "latin_1", "iso8859_15", "mac_roman", "cp850")
# Characters that are rare in contact data but typical of a file read with the wrong Western code page (e.g. a Mac
# Roman 'é' read as cp1252 is 'Ž', a cp1252 'ß' read as Mac Roman is 'ﬂ', cp1252 capitals read as cp850 are box
# drawings, an ISO 8859-15 '€' read as cp1252 is '¤'). German low quotes and French guillemets are not here: they
# are ordinary in cp1252 text.
_UNLIKELY = re.compile("[\x80-\x9f¢ƒˆ‰ŠŽšžŸ˜‡¤¦¨¬¯¶¸¹¼½¾\u2500-\u25ff√∞≠≤≥∂∑∏π∫Ω◊∆≈⁄ı˘˙˚˝˛ˇ\uf8ffﬁﬂ‗]")
_C1 = re.compile(rb"[\x80-\x9f]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HIGH = re.compile(rb"[\x80-\xff]+")

_ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "utf-32": "UTF-32",
    "cp1252": "Windows-1252 (cp1252)",
    "iso8859-1": "Latin-1 (iso8859-1)",
    "iso8859-15": "Latin-9 (iso8859-15)",
    "mac-roman": "Mac Roman (mac-roman)",
    "cp850": "DOS Latin-1 (cp850)",
}

_ERROR_COLUMNS = ["line", "column", "reason", "value"]


@dataclass(frozen=True, eq=False)
class RawTable:
    """A file read as text cells: the header as written, one text column per header cell, the line of every row."""

    format: str  # "csv" | "xlsx"
    encoding: str  # "utf-8", "utf-8-sig", "utf-16", "cp1252", ... as detected ("" for xlsx)
    delimiter: str  # ",", ";", "\t" or "|" as detected ("" for xlsx)
    sheet: str  # the sheet read ("" for csv)
    sheets: tuple[str, ...]  # every sheet of a workbook (() for csv)
    header: tuple[str, ...]  # header cells trimmed; an empty header cell becomes "column N" (1-based)
    frame: pd.DataFrame  # one column per header cell named "c0", "c1", ...; str values, trimmed, '' = empty
    lines: np.ndarray  # int64: the file line (csv) or sheet row (xlsx) of each row; the header is not a row
    errors: pd.DataFrame  # whole-row problems: line (int), column (''), reason, value: rows too wide or short
    ragged: int  # how many rows were skipped for having the wrong number of values

    def describe(self) -> str:
        """One line for the report: "CSV, ';' separated, Windows-1252 (cp1252)" or "Excel sheet 'Contacts'"."""
        if self.format == "xlsx":
            return f"Excel sheet '{self.sheet}'"
        if len(self.header) == 1:
            layout = "one column"
        else:
            layout = ("tab" if self.delimiter == "\t" else f"'{self.delimiter}'") + " separated"
        return f"CSV, {layout}, {_ENCODING_LABELS.get(self.encoding, self.encoding)}"


# --------------------------------------------------------------------------------------------------------------------
# Entry points


def load_bytes(source: Source) -> bytes:
    """The content of a path, bytes, or an open or uploaded file (read from its start)."""
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


def read_table(
    source: Source,
    *,
    kind: str = "contacts",
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> RawTable:
    """Read a CSV or .xlsx file as text cells; the format comes from the content, not the file name.

    `sheet` (name or 0-based index) applies to workbooks only; `encoding` and `delimiter` to CSV only, and when
    given they are used as they are instead of being detected. `kind` ("contacts", "interactions") names the file
    in messages. Raises ImportRejected for a file that cannot be read as a whole, UsageError for a bad argument.
    """
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise UsageError(
            f"a CSV separator is one character other than a quote or a line break, not {delimiter!r}"
        )
    data = load_bytes(source)
    if not data or data.isspace():
        raise ImportRejected(f"the {kind} file is empty")
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(kind, data, sheet)
    if data.startswith(_BINARY_MAGIC):
        raise ImportRejected(_binary_message(kind))
    return _read_csv(kind, data, encoding, delimiter)


def _binary_message(kind: str) -> str:
    return f"the {kind} file is an old Excel .xls (or binary) file: save it as .xlsx or CSV"


# --------------------------------------------------------------------------------------------------------------------
# Encoding


def _normalised(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UsageError(f"unknown text encoding '{encoding}'") from None


def _decode(kind: str, data: bytes, encoding: str | None) -> tuple[str, bytes]:
    """The encoding (normalised name) and the file as UTF-8 bytes without a BOM."""
    if encoding is not None:
        return _decode_as(kind, data, _normalised(encoding))
    for bom, name in _BOMS:
        if data.startswith(bom):
            return _decode_as(kind, data, name)
    wide = _utf16_without_bom(data[:4096])
    if wide:
        return _decode_as(kind, data, wide)
    # Control characters (NUL above all) do not occur in text of an 8-bit encoding or UTF-8: a binary file.
    if _looks_binary(data[:8192].decode("latin-1")):
        raise ImportRejected(_binary_message(kind))
    try:
        data.decode("utf-8")
        return "utf-8", data
    except UnicodeDecodeError:
        pass
    return _decode_single_byte(kind, data)


def _decode_as(kind: str, data: bytes, name: str) -> tuple[str, bytes]:
    try:
        text = data.decode(name)
    except UnicodeDecodeError as exc:
        label = _ENCODING_LABELS.get(name, name)
        raise ImportRejected(
            f"the {kind} file is not text in {label} (byte {exc.start + 1} does not fit)"
        ) from None
    if _looks_binary(text[:8192]):
        raise ImportRejected(_binary_message(kind))
    if name in ("utf-8", "utf-8-sig"):
        return name, data.removeprefix(codecs.BOM_UTF8)  # already UTF-8: no second copy
    # A BOM the codec left (utf-16-le named explicitly, say) is not part of the first header cell.
    return name, text.removeprefix("\ufeff").encode("utf-8")


def _looks_binary(head: str) -> bool:
    """A NUL, or more than one character in a hundred a control character other than tab and line breaks."""
    if "\x00" in head:
        return True
    return len(_CONTROL.findall(head)) > len(head) / 100


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 without a BOM, from its NUL pattern: Latin text has a NUL in every other byte."""
    head = head[: len(head) // 2 * 2]
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd >= 0.4 * pairs and even <= 0.05 * pairs:
        return "utf-16-le"
    if even >= 0.4 * pairs and odd <= 0.05 * pairs:
        return "utf-16-be"
    return None


def _non_ascii_sample(data: bytes) -> bytes:
    """The lines holding non-ASCII bytes (up to _SAMPLE_BYTES): only they tell one code page from another."""
    parts: list[bytes] = []
    size = 0
    pos = 0
    for m in _HIGH.finditer(data):
        if m.start() < pos:
            continue
        # A piece per line, cut around the match so a file without line breaks does not become one huge piece.
        start = max(data.rfind(b"\n", 0, m.start()) + 1, m.start() - 512)
        end = data.find(b"\n", m.end())
        end = min(len(data) if end < 0 else end + 1, m.end() + 512)
        parts.append(data[start:end])
        size += end - start
        pos = end
        if size >= _SAMPLE_BYTES:
            break
    return b"".join(parts)


def _decode_single_byte(kind: str, data: bytes) -> tuple[str, bytes]:
    """Not UTF-8: a Western code page. The reading with the fewest unlikely characters wins; on a tie cp1252 (what
    Windows and Excel write, and the answer when charset_normalizer is unsure), then charset_normalizer's order.

    charset_normalizer alone is not enough: on a few accented words it often ranks Mac Roman or cp850 first for a
    cp1252 file, or does not propose ISO 8859-15 for a file whose only non-ASCII is a euro sign. A code page it did
    not propose still counts when its reading holds no unlikely character at all, so bytes that read as plausible
    text in none of them are refused.
    """
    from charset_normalizer import from_bytes

    sample = _non_ascii_sample(data)
    proposed = [codecs.lookup(m.encoding).name for m in from_bytes(sample, cp_isolation=list(_SINGLE_BYTE))]
    everyone = ["cp1252", *proposed, *(codecs.lookup(n).name for n in _SINGLE_BYTE)]
    ranked: list[tuple[int, int, str]] = []
    for order, name in enumerate(dict.fromkeys(everyone)):
        try:
            text = sample.decode(name)
        except UnicodeDecodeError:
            continue
        if name in ("iso8859-1", "iso8859-15") and _C1.search(sample):
            continue  # C1 control characters: these bytes are not Latin-1 text
        unlikely = len(_UNLIKELY.findall(text))
        if name == "cp1252" or name in proposed or unlikely == 0:
            ranked.append((unlikely, order, name))
    ranked.sort()
    for _unlikely, _order, name in ranked:
        # The sample holds the first non-ASCII lines only: the whole file must decode too.
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        if name in ("iso8859-1", "iso8859-15") and _C1.search(data):
            continue
        return name, text.encode("utf-8")
    try:
        data.decode("cp1252")
        fault = 0
    except UnicodeDecodeError as exc:
        fault = exc.start
    raise ImportRejected(
        f"the {kind} file is not text in UTF-8, Windows-1252 or another known encoding "
        f"(byte {fault + 1} fits none of them)"
    )


# --------------------------------------------------------------------------------------------------------------------
# Delimiter


def _field_counts(sample: str, delimiter: str, cut: bool) -> tuple[int, float]:
    """The header's field count with `delimiter` and the share of sample rows that have as many."""
    try:
        records = [
            r
            for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
            if any(c.strip() for c in r)
        ]
    except csv.Error:
        return 0, 0.0
    if cut and len(records) > 1:
        records = records[:-1]  # the sample may end inside a record
    if not records:
        return 0, 0.0
    width = len(records[0])
    rows = records[1:]
    if not rows:
        return width, 1.0
    return width, sum(len(r) == width for r in rows) / len(rows)


def _sniff_delimiter(head: str) -> str | None:
    """The separator of the first ~50 lines; None for a file of one column."""
    lines = io.StringIO(head[:_SNIFF_CHARS], newline="").readlines()
    # A sample that stops before the file does may end inside a quoted value.
    cut = len(head) > _SNIFF_CHARS or len(lines) > _SNIFF_LINES
    lines = lines[:_SNIFF_LINES]
    while lines and not lines[0].strip():
        lines.pop(0)
    sample = "".join(lines)
    try:
        guess: str | None = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        guess = None
    if guess in DELIMITERS:
        width, share = _field_counts(sample, guess, cut)
        if width > 1 and share >= 0.8:
            return guess
    # The sniffer failed or its answer does not hold: the candidate that splits the header and most rows alike.
    best: tuple[float, int, str] | None = None
    for rank, candidate in enumerate(DELIMITERS):
        width, share = _field_counts(sample, candidate, cut)
        if width > 1 and (best is None or (share, -rank) > (best[0], best[1])):
            best = (share, -rank, candidate)
    return best[2] if best else None


# --------------------------------------------------------------------------------------------------------------------
# CSV


def _line_breaks(data: bytes, start: int = 0, end: int | None = None) -> int:
    """Line breaks as the csv module and pyarrow see them: \\n, \\r and \\r\\n each end one line."""
    stop = len(data) if end is None else end
    return data.count(b"\n", start, stop) + data.count(b"\r", start, stop) - data.count(b"\r\n", start, stop)


def _header_names(cells: list[str]) -> tuple[str, ...]:
    """The header cells trimmed, an empty one named by its position; the same name twice is refused."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells):
        text = cell.strip() or f"column {i + 1}"
        key = text.lower()
        if key in seen:
            raise ImportRejected(
                f"the header names column '{text}' twice (columns {seen[key] + 1} and {i + 1})"
            )
        seen[key] = i
        names.append(text)
    return tuple(names)


def _read_header(kind: str, body: bytes, head: str, delimiter: str) -> tuple[list[str], int, int, int]:
    """The header cells, the bytes, characters and lines they take (leading blank lines included)."""
    buf = io.StringIO(head, newline="")
    reader = csv.reader(buf, delimiter=delimiter)
    try:
        cells: list[str] = []
        while not cells:
            cells = next(reader)
            if cells and not any(c.strip() for c in cells):
                cells = []
    except StopIteration:
        raise ImportRejected(f"the {kind} file is empty") from None
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise ImportRejected(
                f"the {kind} file is not a CSV file: its first line is longer than a header can be"
            ) from None
        raise ImportRejected(
            f"the {kind} file is not a CSV file: the header cannot be read ({exc})"
        ) from None
    consumed = buf.tell()
    if any("\n" in c or "\r" in c for c in cells) and head[:consumed].count('"') % 2:
        raise ImportRejected(
            f'the {kind} file cannot be read as CSV: a quote (") opens a value that never ends'
        )
    if consumed >= len(head) and len(body) > _HEAD_BYTES:
        raise ImportRejected(
            f"the {kind} file is not a CSV file: its first line is longer than a header can be"
        )
    return cells, len(head[:consumed].encode("utf-8")), consumed, reader.line_num


def _read_csv(kind: str, data: bytes, encoding: str | None, delimiter: str | None) -> RawTable:
    found, body = _decode(kind, data, encoding)
    del data
    if not body or body.isspace():
        raise ImportRejected(f"the {kind} file is empty")
    head = body[:_HEAD_BYTES].decode("utf-8", errors="ignore")
    sep = delimiter or _sniff_delimiter(head)
    # One column: parse with a character the file does not hold, so a stray comma cannot split a value.
    split = sep or next((c for c in ("\x1f", "\x1e", "\x1d", "\x1c") if c.encode() not in body), ",")
    cells, header_bytes, header_chars, header_lines = _read_header(kind, body, head, split)
    written = len(cells)
    if sep:
        # Trailing separators: Excel and many ERPs end every line with ';' (or only the header, or only the rows).
        # Read the rows' usual width; columns past the header that hold nothing are not columns.
        sample = head[header_chars : header_chars + _SNIFF_CHARS]
        width = _usual_width(sample, split, len(head) > header_chars + _SNIFF_CHARS, written)
        if width < written and not any(c.strip() for c in cells[width:]):
            cells, written = cells[:width], width
        elif width > written:
            cells = cells + [""] * (width - written)
    header = _header_names(cells[:written])
    rest = body[header_bytes:]
    del body
    if not rest or rest.isspace():
        raise ImportRejected(f"the {kind} file has a header but no rows below it")

    ncols = len(cells)
    bad_rows: list[tuple[int, str]] = []

    def on_bad_row(row: Any) -> str:
        bad_rows.append((int(row.actual_columns), str(row.text)))
        return "skip"

    names = [f"c{i}" for i in range(ncols)]
    try:
        table = pacsv.read_csv(
            io.BytesIO(rest),
            # One thread: skipped rows must reach on_bad_row in file order to be placed (_lines_around_bad_rows).
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(
                delimiter=split,
                newlines_in_values=True,
                ignore_empty_lines=False,  # blank lines stay rows (dropped below) so every line is counted
                invalid_row_handler=on_bad_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.large_string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowException) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImportRejected(f"the {kind} file cannot be read as CSV ({reason[:160]})") from None

    _check_quotes(kind, rest, table)
    first = header_lines + 1
    nrows = table.num_rows
    # Each row takes one line plus the line breaks inside its quoted values; only count them when the rows and the
    # physical lines disagree.
    spans = np.ones(nrows, dtype=np.int64)
    if b'"' in rest:
        physical = _line_breaks(rest) + (0 if rest.endswith((b"\n", b"\r")) else 1)
        if physical != nrows + len(bad_rows):
            for col in table.columns:
                if pc.any(pc.match_substring_regex(col, "[\r\n]")).as_py():
                    spans += _value_breaks(col)
    if not bad_rows:
        lines = first + np.concatenate(([0], np.cumsum(spans)[:-1])) if nrows else np.zeros(0, dtype=np.int64)
        bad_lines = np.zeros(0, dtype=np.int64)
    else:
        lines, bad_lines = _lines_around_bad_rows(rest, first, spans, bad_rows)
    del rest
    if ncols > written and bad_rows:
        # Read with trailing columns added, a row as wide as the written header (no trailing separator) was skipped:
        # it is a good row, read again on its own.
        narrow = np.array([actual == written for actual, _text in bad_rows])
        if narrow.any():
            texts = [text for (_actual, text), n in zip(bad_rows, narrow, strict=True) if n]
            table, lines = _with_rows(table, lines, texts, bad_lines[narrow], written, split)
            bad_rows = [row for row, n in zip(bad_rows, narrow, strict=True) if not n]
            bad_lines = bad_lines[~narrow]
    errors = _ragged_errors(bad_rows, bad_lines, written, split)

    columns = [pc.utf8_trim_whitespace(col) for col in table.columns]
    unnamed = [not c.strip() for c in cells[:written]]
    columns, header, wide, errors = _without_trailing_columns(columns, header, unnamed, lines, errors, split)
    frame, keep = _text_frame(columns, names[: len(columns)], trimmed=True)
    keep &= ~wide
    if not keep.all():
        frame = frame.loc[keep].reset_index(drop=True)
        lines = lines[keep]
    if len(frame) == 0 and len(errors) == 0:
        raise ImportRejected(f"the {kind} file has a header but no rows below it")
    return RawTable(
        format="csv",
        encoding=found,
        delimiter=sep or ",",
        sheet="",
        sheets=(),
        header=header,
        frame=frame,
        lines=np.asarray(lines, dtype=np.int64),
        errors=errors,
        ragged=len(errors),
    )


def _usual_width(sample: str, delimiter: str, cut: bool, written: int) -> int:
    """How many values to read per row given the first rows: fewer than the header's `written` cells when four rows
    in five have fewer; more when four rows in five have either `written` values or the same wider count, mostly
    with nothing after the header's last cell (trailing separators); else `written`."""
    try:
        records = [
            r
            for r in itertools.islice(
                csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter), _SNIFF_LINES
            )
            if any(c.strip() for c in r)
        ]
    except csv.Error:
        return written
    if cut and len(records) > 1:
        records = records[:-1]
    if not records:
        return written
    widths = Counter(len(r) for r in records)
    width, count = widths.most_common(1)[0]
    if width < written and count >= 0.8 * len(records):
        return width
    wider = Counter(len(r) for r in records if len(r) > written and not any(c.strip() for c in r[written:]))
    if wider:
        width = wider.most_common(1)[0][0]
        # Rows with a value past the header count too: read wide, they are reported as too wide.
        if widths[width] + widths[written] >= 0.8 * len(records):
            return width
    return written


def _without_trailing_columns(
    columns: list[Any],
    header: tuple[str, ...],
    unnamed: list[bool],
    lines: np.ndarray,
    errors: pd.DataFrame,
    sep: str,
) -> tuple[list[Any], tuple[str, ...], np.ndarray, pd.DataFrame]:
    """Drop the columns after the header's last written cell (a row with a value there is too wide) and trailing
    columns with an empty header cell and no value: both are trailing separators, not data."""
    written = len(header)
    nrows = len(columns[0]) if columns else 0
    wide = np.zeros(nrows, dtype=bool)
    if len(columns) > written:
        last = np.zeros(nrows, dtype=np.int64)
        for k, col in enumerate(columns[written:]):
            filled = pc.not_equal(col, "").to_numpy(zero_copy_only=False)
            wide |= filled
            last[filled] = written + k + 1
        if wide.any():
            rows = np.flatnonzero(wide)
            texts = [sep.join(str(col[int(i)].as_py()) for col in columns[: last[i]]) for i in rows]
            reasons = [f"has {plural(last[i], 'value')} where the header has {plural(written, 'column')}" for i in rows]
            more = _errors_frame(lines[rows].tolist(), reasons, texts)
            errors = pd.concat([errors, more], ignore_index=True) if len(errors) else more
            errors = errors.sort_values("line", kind="stable", ignore_index=True)
        columns = columns[:written]
    n = len(columns)
    while n > 1 and unnamed[n - 1] and not pc.any(pc.not_equal(columns[n - 1], "")).as_py():
        n -= 1
    return columns[:n], header[:n], wide, errors


def _value_breaks(col: Any) -> np.ndarray:
    counts = [
        pc.count_substring(col, s).to_numpy(zero_copy_only=False).astype(np.int64) for s in ("\n", "\r")
    ]
    both = pc.count_substring(col, "\r\n").to_numpy(zero_copy_only=False).astype(np.int64)
    return np.asarray(counts[0] + counts[1] - both, dtype=np.int64)


def _unquoted(col: Any) -> Any:
    """Undo our export's formula guard: a leading quote before = + - @ tab or CR goes, so an exported file comes
    back as it was stored (a phone number '+33…' stays +33…). Only columns that hold such a quote pay for the regex."""
    if not pc.any(pc.starts_with(col, "'")).as_py():
        return col
    return pc.replace_substring_regex(col, pattern="^'([=+\\-@\t\r])", replacement="\\1")


def _text_frame(
    columns: list[Any], names: list[str], *, trimmed: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """The cells trimmed (unless `trimmed` says they are) and unguarded as a frame, and which rows hold a value
    (blank rows are not rows)."""
    # Trimmed in pyarrow: pandas' str.strip falls back to Python for some text. Not twice: at a million rows a
    # second pass over every column costs about half a second.
    if not trimmed:
        columns = [pc.utf8_trim_whitespace(col) for col in columns]
    table = pa.table([_unquoted(col) for col in columns], names=names)
    frame = table.to_pandas()
    # Only rows whose first value is empty can be blank: test the next column on those alone.
    blank = (frame[names[0]] == "").to_numpy().copy() if names else np.zeros(len(frame), dtype=bool)
    for name in names[1:]:
        if not blank.any():
            break
        candidates = np.flatnonzero(blank)
        blank[candidates] = (frame[name].iloc[candidates] == "").to_numpy()
    return frame, ~blank


def _check_quotes(kind: str, rest: bytes, table: pa.Table) -> None:
    """Refuse a file whose last value opens a quote that never closes: it swallowed the lines after it."""
    if table.num_rows == 0:
        return
    last = [str(col[-1].as_py() or "") for col in table.columns]
    if any("\n" in v or "\r" in v for v in last) and rest.count(b'"') % 2:
        raise ImportRejected(
            f'the {kind} file cannot be read as CSV: a quote (") opens a value that never ends'
        )


def _errors_frame(lines: list[int], reasons: list[str], values: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "line": np.asarray(lines, dtype=np.int64),
            "column": pd.Series([""] * len(lines), dtype="str"),
            "reason": pd.Series(reasons, dtype="str"),
            "value": pd.Series(values, dtype="str"),
        },
        columns=_ERROR_COLUMNS,
    )


def _lines_around_bad_rows(
    rest: bytes, first: int, spans: np.ndarray, bad_rows: list[tuple[int, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """The lines of the good rows once the rows of the wrong width are placed, and the line of each of those (0 when
    its text cannot be found)."""
    # pyarrow hands the skipped rows over in file order with their text but not their position: find each one as a
    # whole line after the previous one. A file of a million ragged rows goes through this loop: keep it lean.
    # One kind of line break (the usual case): count it alone instead of \n, \r and \r\n.
    newline: bytes | None = None
    if b"\r" not in rest:
        newline = b"\n"
    elif b"\n" not in rest:
        newline = b"\r"
    pos = 0
    counted_to = 0
    breaks = 0
    row_lines: list[int] = []
    placed: list[int] = []
    placed_spans: list[int] = []
    for _actual, text in bad_rows:
        needle = text.encode("utf-8")
        found = -1
        at = pos
        while needle:
            i = rest.find(needle, at)
            if i < 0:
                break
            end = i + len(needle)
            starts_line = i == 0 or rest[i - 1 : i] in (b"\n", b"\r")
            ends_line = end == len(rest) or rest[end : end + 1] in (b"\n", b"\r")
            if starts_line and ends_line:
                found = i
                break
            at = i + 1
        if found < 0:
            row_lines.append(0)
            continue
        if newline is None:
            breaks += _line_breaks(rest, counted_to, found)
        else:
            breaks += rest.count(newline, counted_to, found)
        counted_to = found
        line = first + breaks
        row_lines.append(line)
        placed.append(line)
        placed_spans.append(1 + _line_breaks(needle) if b"\n" in needle or b"\r" in needle else 1)
        pos = found + len(needle)
    bad_lines = np.asarray(row_lines, dtype=np.int64)
    if len(spans) == 0:
        return np.zeros(0, dtype=np.int64), bad_lines
    occupied = _expand(np.asarray(placed, dtype=np.int64), np.asarray(placed_spans, dtype=np.int64))
    total = int(spans.sum()) + len(occupied)
    free = np.setdiff1d(np.arange(first, first + total, dtype=np.int64), occupied, assume_unique=True)
    starts = np.concatenate(([0], np.cumsum(spans)[:-1]))
    return free[np.minimum(starts, len(free) - 1)], bad_lines


def _ragged_errors(
    bad_rows: list[tuple[int, str]], bad_lines: np.ndarray, width: int, delimiter: str
) -> pd.DataFrame:
    """The rows of the wrong width as errors; a line of separators only (";;;;") is blank, not an error."""
    blank = f'{delimiter}"\x1f\x1e\x1d\x1c'
    kept = [i for i, (_actual, text) in enumerate(bad_rows) if text.strip().strip(blank).strip()]
    return _errors_frame(
        bad_lines[kept].tolist() if kept else [],
        [f"has {plural(bad_rows[i][0], 'value')} where the header has {plural(width, 'column')}" for i in kept],
        [bad_rows[i][1] for i in kept],
    )


def _with_rows(
    table: pa.Table, lines: np.ndarray, texts: list[str], at: np.ndarray, width: int, delimiter: str
) -> tuple[pa.Table, np.ndarray]:
    """The table with rows parsed from `texts` (whole records of `width` values) put at lines `at`; the columns
    past `width` are empty for them."""
    names = table.column_names
    try:
        extra = pacsv.read_csv(
            io.BytesIO("\n".join(texts).encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=names[:width], use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.large_string() for n in names[:width]},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowException:
        return table, lines
    if extra.num_rows != len(texts):
        return table, lines
    for name in names[extra.num_columns :]:
        extra = extra.append_column(name, pa.array([""] * extra.num_rows, type=pa.large_string()))
    merged = pa.concat_tables([table, extra])
    all_lines = np.concatenate([lines, at])
    order = np.argsort(all_lines, kind="stable")
    return merged.take(pa.array(order)), all_lines[order]


def _expand(starts: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Every line of runs given by their first line and length: (5, 2), (9, 1) -> 5, 6, 9."""
    if len(starts) == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.arange(int(spans.sum()), dtype=np.int64) - np.repeat(np.cumsum(spans) - spans, spans)
    return np.repeat(starts, spans) + offsets


# --------------------------------------------------------------------------------------------------------------------
# Excel


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value.is_integer():
        return str(int(value))
    # The shortest text that gives the float back, never in exponent form (1e-05 -> 0.00001).
    return format(Decimal(repr(value)), "f")


def _cell_text(value: Any) -> str:
    """A cell as the text a person sees in Excel, minus the number formatting."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, dt.datetime):  # before date: a datetime is a date; the time of day is dropped
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value).strip()


def _pick_sheet(kind: str, names: tuple[str, ...], sheet: str | int | None) -> str:
    listed = ", ".join(f"'{n}'" for n in names)
    if sheet is None:
        return names[0]
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if 0 <= sheet < len(names):
            return names[sheet]
        raise UsageError(
            f"the {kind} workbook has no sheet number {sheet} (counted from 0): its sheets are {listed}"
        )
    if isinstance(sheet, str):
        if sheet in names:
            return sheet
        loose = [n for n in names if n.strip().casefold() == sheet.strip().casefold()]
        if len(loose) == 1:
            return loose[0]
    raise UsageError(f"the {kind} workbook has no sheet '{sheet}': its sheets are {listed}")


def _read_xlsx(kind: str, data: bytes, sheet: str | int | None) -> RawTable:
    import openpyxl

    # openpyxl warns about styles and extensions it drops; they do not matter for values.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception:  # noqa: BLE001 - any ZIP openpyxl cannot open is not a workbook we can read
            raise ImportRejected(_binary_message(kind)) from None
        try:
            sheets = tuple(wb.sheetnames)
            name = _pick_sheet(kind, sheets, sheet)
            ws = wb[name]
            if not hasattr(ws, "iter_rows"):
                raise ImportRejected(f"sheet '{name}' of the {kind} workbook is a chart, not a table")
            if hasattr(ws, "reset_dimensions"):
                # The stored dimensions may be stale (written by other tools): read every row there is.
                ws.reset_dimensions()
            header, rows, lines, errors = _sheet_rows(kind, name, ws.iter_rows(min_row=1, values_only=True))
        finally:
            wb.close()
    names = [f"c{i}" for i in range(len(header))]
    columns = [pa.array(col, type=pa.large_string()) for col in zip(*rows, strict=True)] if rows else None
    if columns is None:
        columns = [pa.array([], type=pa.large_string()) for _ in names]
    frame, _keep = _text_frame(columns, names)
    return RawTable(
        format="xlsx",
        encoding="",
        delimiter="",
        sheet=name,
        sheets=sheets,
        header=header,
        frame=frame,
        lines=np.asarray(lines, dtype=np.int64),
        errors=errors,
        ragged=len(errors),
    )


def _sheet_rows(
    kind: str, name: str, rows_in: Any
) -> tuple[tuple[str, ...], list[list[str]], list[int], pd.DataFrame]:
    """The header, the rows as text cells padded to the header, their sheet row numbers, and rows too wide."""
    header: tuple[str, ...] | None = None
    width = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    err_lines: list[int] = []
    reasons: list[str] = []
    values: list[str] = []
    for number, row in enumerate(rows_in, start=1):
        cells = [_cell_text(v) for v in row]
        while cells and not cells[-1]:
            cells.pop()  # empty cells after the last value are formatting, not columns
        if not cells:
            continue
        if header is None:
            header = _header_names(cells)
            width = len(cells)
            continue
        if len(cells) > width:
            err_lines.append(number)
            reasons.append(f"has {plural(len(cells), 'value')} where the header has {plural(width, 'column')}")
            values.append(" | ".join(cells))
            continue
        cells.extend([""] * (width - len(cells)))
        rows.append(cells)
        lines.append(number)
    if header is None:
        raise ImportRejected(f"the {kind} file is empty: sheet '{name}' holds no values")
    if not rows and not err_lines:
        raise ImportRejected(f"the {kind} file has a header but no rows below it (sheet '{name}')")
    return header, rows, lines, _errors_frame(err_lines, reasons, values)
