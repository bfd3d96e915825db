"""The import pipeline: read (read.py) → map (mapping.py, values.py) → check (check.py) → write (write.py).

`plan_import` reads a file and maps it without writing: what each column becomes, its sample values, the rule its
values are read with and the cells that do not read, and the first rows as they will be stored. `run_import` takes a
plan through the checks and, unless it is a dry run, writes it in one transaction. `import_contacts`,
`import_interactions` and `import_outcomes` do both in one call (the CLI and scripts); the Data page plans first,
shows, then runs.

Outcomes (orders, sign-ups ...) are keyed by (kind, reference) when they carry a reference: re-importing a stored
reference updates that outcome (its contact, date and amount: the newer file is the corrected one) instead of adding
it again, so an order counts once however often its file comes back. Outcomes without a reference are always added.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping as Map
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, delete, select

from .._db import Database
from .._errors import ImportRejected, NotFoundError, UsageError
from .._models import Contact, ImportMapping, table_of
from ..auth.audit import record
from ..auth.identity import current_user
from ..auth.roles import require
from ..fields import FieldRegistry, load_fields
from .check import (
    CONTACT_COLUMNS,
    INTERACTION_COLUMNS,
    INTERACTION_REQUIRED,
    OUTCOME_COLUMNS,
    OUTCOME_REQUIRED,
    Parsed,
    check_contact_fields,
    check_contacts_against_db,
    check_interaction_fields,
    check_interactions_db,
    check_outcome_fields,
    check_outcomes_db,
)
from .mapping import Mapping, custom_field_name, header_signature, match_header, suggest_mapping
from .read import RawTable, read_table
from .report import ErrorLog, ImportReport, row_errors
from .values import (
    ColumnValues,
    infer_type,
    parse_booleans,
    parse_countries,
    parse_dates,
    parse_decimals,
    parse_genders,
    parse_integers,
    parse_languages,
    parse_list,
)
from .write import (
    ContactBatch,
    CustomColumn,
    Progress,
    checks_references,
    write_contacts,
    write_interactions,
    write_outcomes,
)

__all__ = [
    "DATE_ORDERS",
    "ColumnReport",
    "ImportPlan",
    "delete_mapping",
    "import_contacts",
    "import_interactions",
    "import_outcomes",
    "list_mappings",
    "plan_import",
    "run_import",
    "save_mapping",
    "validate_contacts",
    "validate_interactions",
    "validate_outcomes",
]
KINDS = ("contacts", "interactions", "outcomes")
_KNOWN = {"contacts": CONTACT_COLUMNS, "interactions": INTERACTION_COLUMNS, "outcomes": OUTCOME_COLUMNS}
_REQUIRED = {"interactions": INTERACTION_REQUIRED, "outcomes": OUTCOME_REQUIRED}

DATE_ORDERS = ("auto", "DMY", "MDY", "YMD")
_DATE_TARGETS = frozenset({"birth_date", "acquisition_date", "last_purchase_date", "date"})
_MONEY_TARGETS = frozenset({"total_spent", "cost", "amount"})
_INT_TARGETS = {"rating": (1, 5), "purchase_count": (0, 2_147_483_647), "duration_min": (0, 2_147_483_647)}
_TYPE_WORDS = {
    "company": "company", "companies": "company", "societe": "company", "société": "company", "entreprise": "company",
    "organisation": "company", "organization": "company", "firma": "company", "unternehmen": "company",
    "business": "company", "b2b": "company", "account": "company",
    "person": "person", "personne": "person", "particulier": "person", "individual": "person", "contact": "person",
    "privat": "person", "privatperson": "person", "b2c": "person", "people": "person",
}  # fmt: skip
_MAX_TEXT = 1000  # custom_values.txt
_MAX_CODE = 30  # contact_codes.code
_PREVIEW_ROWS = 10


@dataclass(frozen=True)
class ColumnReport:
    """One file column as the mapping table shows it: what it feeds, its type, samples, and what does not read."""

    source: str
    position: int
    field: str  # '' = skipped
    how: str
    type: str
    samples: tuple[str, ...]
    problems: int
    rule: str
    note: str = ""


@dataclass(frozen=True, eq=False)
class ImportPlan:
    """A file read and mapped, nothing written: the mapping, each column's report, and the first rows as stored."""

    kind: str
    raw: RawTable
    mapping: Mapping
    columns: tuple[ColumnReport, ...]
    preview: pd.DataFrame
    date_order: str
    saved_mapping: str = ""
    ambiguous: tuple[str, ...] = ()
    parsed: Parsed | None = field(default=None, repr=False)
    custom: tuple[CustomColumn, ...] = ()
    blank: pd.DataFrame | None = field(default=None, repr=False)
    rules: tuple[str, ...] = ()
    problem: str = (
        ""  # why this mapping cannot be imported ('' when it can): no key column, a required column
    )

    @property
    def new_fields(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.custom if c.new)


# --------------------------------------------------------------------------------------------------- mapping


def _load_mapping(mapping: Any, header: Sequence[str]) -> Mapping | None:
    if mapping is None or isinstance(mapping, Mapping):
        return mapping
    if isinstance(mapping, str | os.PathLike) and not str(mapping).lstrip().startswith("{"):
        path = Path(mapping)
        try:
            mapping = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"mapping file not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the mapping file {path}: {exc}") from None
    elif isinstance(mapping, str):
        try:
            mapping = json.loads(mapping)
        except ValueError as exc:
            raise UsageError(f"the mapping is not valid JSON: {exc}") from None
    return Mapping.from_json(mapping, header)


def _saved_for(conn: Connection, kind: str, header: Sequence[str]) -> tuple[str, Mapping] | None:
    t = table_of(ImportMapping)
    row = conn.execute(
        select(t.c.name, t.c.mapping)
        .where(t.c.kind == kind, t.c.signature == header_signature(header))
        .order_by(t.c.created_at.desc())
    ).first()
    if row is None:
        return None
    try:
        return row.name, Mapping.from_json(row.mapping, header)
    except UsageError:
        return None


def save_mapping(db: Database, name: str, mapping: Mapping, *, user: str | None = None) -> None:
    """Keep a mapping under a name; a file with the same header gets it offered again (a new save replaces it)."""
    name = (name or "").strip()
    if not name or len(name) > 60:
        raise UsageError("a mapping name is 1 to 60 characters")
    t = table_of(ImportMapping)
    data = mapping.to_json()
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "import")
        replaced = conn.execute(delete(t).where(t.c.name == name)).rowcount
        conn.execute(
            t.insert().values(
                name=name,
                kind=mapping.kind,
                signature=header_signature(mapping.header()),
                mapping=data,
                created_by=user,
            )
        )
        record(conn, user, "mapping.save", f"mapping {name}",
               f"{mapping.kind} mapping {name} {'replaced' if replaced else 'saved'}",
               after="; ".join(mapping.describe())[:500])


def list_mappings(db: Database) -> list[dict[str, Any]]:
    """The saved mappings: name, kind, the columns they map, who saved them and when."""
    t = table_of(ImportMapping)
    with db.read() as conn:
        rows = conn.execute(select(t).order_by(t.c.name)).mappings().all()
    return [dict(r) for r in rows]


def delete_mapping(db: Database, name: str, *, user: str | None = None) -> None:
    """Forget a saved mapping."""
    t = table_of(ImportMapping)
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "import")
        if conn.execute(delete(t).where(t.c.name == name)).rowcount == 0:
            raise NotFoundError(f"no saved mapping {name!r}")
        record(conn, user, "mapping.delete", f"mapping {name}", f"mapping {name} deleted")


# ------------------------------------------------------------------------------------------------ planning


def _column(raw: RawTable, position: int) -> pd.Series:
    return raw.frame[f"c{position}"]


def _samples(col: pd.Series, k: int = 3) -> tuple[str, ...]:
    head = col.head(10_000)  # the first rows hold samples enough; a million need not be scanned
    filled = head[head != ""]
    return tuple(filled.drop_duplicates().head(k).tolist())


def _key_override(raw: RawTable, key: str | None) -> tuple[dict[str, str], str | None]:
    """`--key COLUMN`: that column identifies a contact (an e-mail column makes the e-mail the key)."""
    if not key:
        return {}, None
    if key in ("contact_no", "email"):
        return {}, key
    matches = [h for h in raw.header if h.strip().lower() == key.strip().lower()]
    if not matches:
        raise UsageError(
            f"--key names column {key!r}, which the file does not have ({', '.join(raw.header)})"
        )
    col = _column(raw, raw.header.index(matches[0]))
    looks_like_email = bool(len(col) and col[col != ""].head(200).str.contains("@").all())
    if looks_like_email:
        return {matches[0]: "email"}, "email"
    return {matches[0]: "contact_no"}, "contact_no"


def plan_import(
    db: Database,
    source: Any,
    kind: str = "contacts",
    *,
    mapping: Any = None,
    overrides: Map[str, str] | None = None,
    new_fields: str = "auto",
    date_format: str = "auto",
    key: str | None = None,
    sheet: str | int | None = None,
    raw: RawTable | None = None,
) -> ImportPlan:
    """Read and map a file, writing nothing: the mapping (given, saved for this header, or suggested) and the values.

    `overrides` maps a file column to a field ('' skips it); `new_fields` "auto" makes every other column a custom
    field, "skip" leaves them out; `date_format` decides the date order of ambiguous columns."""
    if kind not in KINDS:
        raise UsageError(f"an import is of contacts, interactions or outcomes, not {kind!r}")
    if new_fields not in ("auto", "skip"):
        raise UsageError("new fields are 'auto' or 'skip'")
    order = (date_format or "auto").upper() if (date_format or "auto").lower() != "auto" else "auto"
    if order not in DATE_ORDERS:
        raise UsageError(f"the date format is one of {', '.join(DATE_ORDERS)}, not {date_format!r}")
    if raw is None:
        try:
            raw = read_table(source, kind=kind, sheet=sheet)
        except ImportRejected as exc:
            # A file refused whole still gets a report: no row read, nothing written.
            if exc.report is None:
                exc.report = ImportReport(kind=kind, encoding="", rows_total=0, rows_valid=0, rows_rejected=0)
            raise
    with db.read() as conn:
        fields = load_fields(conn)
        saved = _saved_for(conn, kind, raw.header) if mapping is None else None
    key_overrides, key_field = _key_override(raw, key)
    chosen = _load_mapping(mapping, raw.header)
    saved_name = ""
    if chosen is None and saved is not None:
        saved_name, chosen = saved
    all_overrides = {**key_overrides, **dict(overrides or {})}
    if chosen is None:
        custom = {s.name: s.type for s in fields.custom} if kind == "contacts" else {}
        types = {}
        if kind == "contacts" and new_fields == "auto":
            # Only a column that becomes a new field needs its values looked at for a type.
            for i, h in enumerate(raw.header):
                if (
                    match_header(h, kind) is None
                    and h not in all_overrides
                    and custom_field_name(h) not in custom
                ):
                    types[i] = infer_type(_column(raw, i), name=h).type
        chosen = suggest_mapping(
            raw.header,
            kind,
            custom_fields=custom,
            new_fields=new_fields,
            overrides=all_overrides,
            new_types=types,
            key=key_field,
        )
    else:
        for source_col, target in all_overrides.items():
            chosen = chosen.with_choice(source_col, target)
        if key_field:
            chosen = replace(chosen, key=key_field)
    return _map(raw, chosen, kind, fields, order, saved_name)


def _map(
    raw: RawTable, mapping: Mapping, kind: str, fields: FieldRegistry, order: str, saved: str
) -> ImportPlan:
    """The map stage: each mapped column normalised to the text the checks expect, custom columns typed."""
    known = _KNOWN[kind]
    n = len(raw.frame)
    lines = raw.lines
    log = ErrorLog()
    if len(raw.errors):
        for r in raw.errors.itertuples(index=False):
            log.add(np.array([r.line], dtype=np.int64), "", str(r.reason), str(r.value))
    bad = np.zeros(n, dtype=bool)
    out: dict[str, pd.Series] = {}
    blank: dict[str, np.ndarray] = {}
    reports: list[ColumnReport] = []
    rules: list[str] = []
    custom: list[CustomColumn] = []
    ambiguous: list[str] = []

    def fail(values: ColumnValues, source: str) -> int:
        mask = np.asarray(values.bad, dtype=bool)
        if mask.any():
            nonlocal bad
            bad |= mask
            log.add(
                lines[mask],
                source,
                np.asarray(values.reasons, dtype=object)[mask],
                col.to_numpy(dtype=object)[mask],
            )
        return int(mask.sum())

    for choice in mapping.columns:
        col = _column(raw, choice.position)
        samples = _samples(col)
        if not choice.field:
            reports.append(
                ColumnReport(choice.source, choice.position, "", choice.how, "", samples, 0, "", "skipped")
            )
            continue
        target = choice.field
        problems, rule, type_, note = 0, "", "", ""
        empty = (col == "").to_numpy()
        if target in known or target in ("first_name", "last_name"):
            blank[target] = empty
            text, values = _builtin(target, col, order)
            if values is not None:
                problems = fail(values, choice.source)
                rule = values.rule
                if values.ambiguous:
                    ambiguous.append(choice.source)
                    note = values.ambiguous
            out[target] = text
            spec = fields.get(target)
            type_ = spec.type if spec is not None else ("number" if target in _MONEY_TARGETS else "text")
        else:
            spec = fields.custom_named(target)
            type_ = spec.type if spec is not None else (choice.new_type or "text")
            column, values = _custom(choice, col, type_, spec is None, order)
            if values is not None:
                problems = fail(values, choice.source)
                rule = values.rule
                if values.ambiguous:
                    ambiguous.append(choice.source)
                    note = values.ambiguous
            custom.append(column)
            note = note or ("new field" if spec is None else "")
        if rule:
            rules.append(f"{choice.source}: {rule}")
        reports.append(
            ColumnReport(
                choice.source, choice.position, target, choice.how, type_, samples, problems, rule, note
            )
        )

    # First and last name make the name when no column is the name.
    if "name" not in out and ("first_name" in out or "last_name" in out):
        first = out.pop("first_name", pd.Series("", index=raw.frame.index, dtype="str"))
        last = out.pop("last_name", pd.Series("", index=raw.frame.index, dtype="str"))
        out["name"] = (first + " " + last).str.strip()
        blank["name"] = (out["name"] == "").to_numpy()
    out.pop("first_name", None)
    out.pop("last_name", None)
    present = frozenset(out)
    # A mapping that cannot work is said on the plan (so a page can show the table to fix it); running it refuses.
    problem = ""
    if kind == "contacts":
        if "contact_no" not in present and "email" not in present:
            problem = (
                "the file has no column for the contact number or the e-mail address, so nothing can tell which "
                "contact a row is: map one of its columns to contact_no (or --key COLUMN)"
            )
    else:
        missing = [c for c in _REQUIRED[kind] if c not in present]
        if missing:
            problem = f"the {kind} file maps no column to {', '.join(missing)}"
    # One empty column shared by every column the file does not map (made once: a million '' each is not free).
    empty_col = pd.Series("", index=raw.frame.index, dtype="str") if any(n not in out for n in known) else None
    frame = pd.DataFrame({name: out[name] if name in out else empty_col for name in known})
    parsed = Parsed(
        kind=kind,
        encoding=raw.encoding or raw.format,
        frame=frame,
        lines=lines,
        present=present,
        unknown=tuple(c.source for c in mapping.columns if not c.field),
        log=log,
        ragged=raw.ragged,
        bad=bad,
    )
    preview = _preview(frame, present, custom, known)
    return ImportPlan(
        kind=kind,
        raw=raw,
        mapping=mapping,
        columns=tuple(reports),
        preview=preview,
        date_order=order,
        saved_mapping=saved,
        ambiguous=tuple(ambiguous),
        parsed=parsed,
        custom=tuple(custom),
        blank=pd.DataFrame(blank) if blank else None,
        rules=tuple(rules),
        problem=problem,
    )


def _builtin(target: str, col: pd.Series, order: str) -> tuple[pd.Series, ColumnValues | None]:
    """A built-in column as the check stage reads it (ISO dates, dot decimals, codes), with how it was read."""
    if target in _DATE_TARGETS:
        values = parse_dates(col, order)
        return values.values.where(~values.bad, ""), values
    if target in _MONEY_TARGETS:
        values = parse_decimals(col, minimum=0)
        return _number_text(values), values
    if target in _INT_TARGETS:
        lo, hi = _INT_TARGETS[target]
        values = parse_integers(col, minimum=lo, maximum=hi)
        return values.values.astype("string").fillna("").astype("str").where(~values.bad, ""), values
    if target == "country":
        values = parse_countries(col)
        return values.values.where(~values.bad, ""), values
    if target == "language":
        values = parse_languages(col)
        return values.values.where(~values.bad, ""), values
    if target == "gender":
        values = parse_genders(col)
        # '' stays '' here: the checks turn an empty gender into 'unknown', and the writer knows it was empty.
        return values.values.where(~values.bad & (col != ""), ""), values
    if target == "exclude_from_segments":
        values = parse_booleans(col)
        text = values.values.map({True: "true", False: "false"}).astype(object).fillna("").astype("str")
        return text.where(~values.bad, ""), values
    if target == "type":
        folded = col.str.lower()
        return folded.map(lambda v: _TYPE_WORDS.get(v, v)).astype("str"), None
    return col, None


def _number_text(values: ColumnValues) -> pd.Series:
    """Amounts as the check reads them ("1234.5"), cast by Arrow; the rare huge one formatted without an exponent."""
    nums = values.values.astype("float64")
    arr = pa.array(nums.to_numpy(), from_pandas=True)
    text = pd.Series(
        pc.fill_null(pc.cast(pc.round(arr, 2), pa.string()), "").to_numpy(zero_copy_only=False),
        index=nums.index,
        dtype="str",
    )
    huge = (nums.abs() >= 1e6).to_numpy()  # Arrow writes large numbers with an exponent
    if huge.any():
        text[huge] = nums[huge].map(lambda v: f"{v:.2f}")
    return text.where(~values.bad, "")


def _custom(
    choice: Any, col: pd.Series, type_: str, new: bool, order: str
) -> tuple[CustomColumn, ColumnValues | None]:
    """A custom column typed: numbers as floats, booleans as 1/0, dates ISO, text as written, lists as codes."""
    label = choice.label or choice.source
    name = choice.field
    if type_ == "list":
        pos, items = parse_list(col)
        items = items.str.slice(0, _MAX_CODE)
        filled = np.zeros(len(col), dtype=bool)
        filled[pos] = True
        codes = pd.DataFrame({"pos": pos.astype(np.int64), "code": items.to_numpy(dtype=object)})
        return CustomColumn(name, label, type_, new=new, codes=codes, filled=filled), None
    if type_ == "number":
        values = parse_decimals(col)
        nums = values.values.astype("float64").where(~values.bad)
        # float.is_integer of every value, in numpy: a Python call per row costs a third of a second at 1M rows.
        given = nums.dropna().to_numpy(dtype=np.float64)
        whole = bool(len(given)) and bool((np.isfinite(given) & (given == np.floor(given))).all())
        return CustomColumn(name, label, type_, integer=whole, new=new, values=nums), values
    if type_ == "boolean":
        values = parse_booleans(col)
        # 1.0 / 0.0 / NaN straight from the boolean array: a dict map goes through a Python object per row.
        flags = values.values.to_numpy(dtype="float64", na_value=np.nan)
        nums = pd.Series(flags, index=values.values.index, name=values.values.name).where(~values.bad)
        return CustomColumn(name, label, type_, new=new, values=nums), values
    if type_ == "date":
        values = parse_dates(col, order)
        return (
            CustomColumn(name, label, type_, new=new, values=values.values.where(~values.bad, "")),
            values,
        )
    too_long = (col.str.len() > _MAX_TEXT).to_numpy()
    # Codes are stored upper-cased, like the built-in codes: GOLD and gold are one loyalty tier.
    text = (col.str.upper() if type_ == "code" else col).where(~too_long, "")
    values = ColumnValues(
        values=text,
        bad=too_long,
        reasons=np.where(too_long, f"is longer than {_MAX_TEXT} characters", ""),
        rule="",
    )
    return CustomColumn(name, label, type_, new=new, values=text), values


def _preview(
    frame: pd.DataFrame, present: frozenset[str], custom: Sequence[CustomColumn], known: Sequence[str]
) -> pd.DataFrame:
    head = frame.head(_PREVIEW_ROWS)
    out = {name: head[name] for name in known if name in present}
    for name in _MONEY_TARGETS & set(out):
        # Amounts as they will be stored: two decimals.
        out[name] = out[name].map(lambda v: f"{float(v):.2f}" if v else "")
    for c in custom:
        if c.type == "list":
            assert c.codes is not None
            codes = c.codes[c.codes["pos"] < _PREVIEW_ROWS]
            joined = codes.groupby("pos")["code"].agg(lambda s: "; ".join(s))
            out[c.name] = pd.Series([joined.get(i, "") for i in range(len(head))], index=head.index)
        else:
            assert c.values is not None
            v = c.values.head(_PREVIEW_ROWS)
            if c.type == "boolean":
                v = v.map({1.0: "yes", 0.0: "no"})
            elif c.type == "number" and c.integer:
                v = v.map(lambda x: "" if pd.isna(x) else f"{int(x)}")
            out[c.name] = v.astype(object).where(v.notna(), "")
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------------------ running


def _email_key(conn: Connection, frame: pd.DataFrame, present: frozenset[str], key: str) -> None:
    """Rows keyed by e-mail: a stored contact with that address gives its number; a new one gets a stable number."""
    if key != "email" or "email" not in present:
        return
    emails = frame["email"].str.lower()
    t = table_of(Contact)
    stored = pd.DataFrame(
        conn.execute(select(t.c.email, t.c.contact_no).where(t.c.email.is_not(None))).all(),
        columns=["email", "contact_no"],
    ).drop_duplicates("email")
    found = (
        emails.map(stored.set_index("email")["contact_no"]).astype(object)
        if len(stored)
        else pd.Series(None, index=frame.index, dtype=object)
    )
    own = frame["contact_no"] if "contact_no" in present else pd.Series("", index=frame.index, dtype="str")
    made = emails.map(lambda e: "E" + hashlib.sha1(e.encode()).hexdigest()[:11].upper() if e else "")
    number = found.fillna(own.where(own != "", made)).astype("str")
    frame["contact_no"] = number


def _report(
    plan: ImportPlan, errors: pd.DataFrame, valid_rows: int, *, inserted: int, updated: int, applied: bool
) -> ImportReport:
    parsed = plan.parsed
    assert parsed is not None
    # Errors name the file's column as written ("Date de naissance"), not our field.
    rename = {c.field: c.source for c in plan.mapping.columns if c.field}
    if len(errors):
        errors = errors.assign(column=errors["column"].map(lambda c: rename.get(c, c)))
    kept, total = row_errors(errors)
    rows_total = len(parsed.frame) + parsed.ragged
    return ImportReport(
        kind=parsed.kind,
        encoding=plan.raw.encoding or plan.raw.format,
        rows_total=rows_total,
        rows_valid=valid_rows,
        rows_rejected=rows_total - valid_rows,
        inserted=inserted,
        updated=updated,
        applied=applied,
        unknown_columns=parsed.unknown,
        errors=kept,
        errors_total=total,
        source=plan.raw.describe(),
        mapping=tuple(plan.mapping.describe()),
        rules=plan.rules,
        new_fields=plan.new_fields,
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


def _valid_rows(mask: np.ndarray, frame: pd.DataFrame | None) -> pd.DataFrame | None:
    return None if frame is None else frame.loc[mask].reset_index(drop=True)


def _custom_rows(col: CustomColumn, valid: np.ndarray) -> CustomColumn:
    if col.type == "list":
        assert col.codes is not None and col.filled is not None
        pos_of_row = np.cumsum(valid) - 1
        keep = valid[col.codes["pos"].to_numpy(dtype=np.int64)]
        codes = col.codes.loc[keep]
        codes = codes.assign(pos=pos_of_row[codes["pos"].to_numpy(dtype=np.int64)]).reset_index(drop=True)
        return replace(col, codes=codes, filled=col.filled[valid])
    assert col.values is not None
    return replace(col, values=col.values.loc[valid].reset_index(drop=True))


def run_import(
    db: Database,
    plan: ImportPlan,
    *,
    strict: bool = False,
    empty_clears: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    user: str | None = None,
) -> ImportReport:
    """Check a planned import against every rule and, unless `dry_run`, write it in one transaction (an
    administrator's, once accounts exist).

    strict: any error -> ImportRejected and nothing written; otherwise the valid rows are written and the report
    lists the others with line, column and reason."""
    user = user if user is not None else current_user()
    parsed = plan.parsed
    assert parsed is not None
    if plan.problem:
        n = len(parsed.frame) + parsed.ragged
        raise ImportRejected(
            plan.problem,
            ImportReport(
                kind=parsed.kind,
                encoding=plan.raw.encoding,
                rows_total=n,
                rows_valid=0,
                rows_rejected=n,
                source=plan.raw.describe(),
                mapping=tuple(plan.mapping.describe()),
            ),
        )
    if plan.ambiguous:
        raise UsageError(
            f"column {plan.ambiguous[0]!r}: its dates can be read day-first or month-first; "
            "choose the date order (DMY or MDY)"
        )
    if parsed.kind == "interactions":
        return _run_interactions(db, plan, strict=strict, dry_run=dry_run, progress=progress, user=user)
    if parsed.kind == "outcomes":
        return _run_outcomes(db, plan, strict=strict, dry_run=dry_run, progress=progress, user=user)
    foreign_keys = checks_references(len(parsed.frame))
    # A bulk load returns once committed; its hundreds of MB reach the database file from the WAL right after.
    with db.read() if dry_run else db.write(foreign_keys=foreign_keys, checkpoint_later=not foreign_keys) as conn:
        if not dry_run:
            require(conn, user, "import")
        frame = parsed.frame.copy()
        _email_key(conn, frame, parsed.present, plan.mapping.key)
        # The checks add to the log: each run starts from the map stage's own errors.
        parsed = replace(parsed, frame=frame, log=parsed.log.copy())
        checked = check_contact_fields(parsed)
        if progress:
            progress(len(frame), len(frame), "checking")
        valid, db_errors, existing = check_contacts_against_db(
            conn, checked.frame, parsed.lines, ~checked.bad, parsed.present
        )
        errors = _all_errors(parsed.log.frame(), db_errors)
        nvalid = int(valid.sum())
        if dry_run:
            return _report(plan, errors, nvalid, inserted=nvalid - existing, updated=existing, applied=False)
        _refuse(_report(plan, errors, nvalid, inserted=0, updated=0, applied=False), strict)
        batch = _batch(checked, valid, plan, empty_clears, user)
        inserted, updated = write_contacts(conn, batch, progress=progress)
        report = _report(plan, errors, nvalid, inserted=inserted, updated=updated, applied=True)
        _audit(conn, user, report)
    return report


def _audit(conn: Connection, user: str, report: ImportReport) -> None:
    """The import's audit row, written in the import's own transaction: the report's one-line summary."""
    record(conn, user, f"import.{report.kind}", f"import {report.kind}", report.summary())


def _batch(checked: Any, valid: np.ndarray, plan: ImportPlan, empty_clears: bool, user: str) -> ContactBatch:
    contacts = checked.frame.loc[valid].reset_index(drop=True)
    pos_of_row = np.cumsum(valid) - 1
    cn = checked.frame["contact_no"]

    def keep(part: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
        rows = part["row"].to_numpy()
        mask = valid[rows]
        rows = rows[mask]
        out = {"contact_no": cn.iloc[rows].reset_index(drop=True), "pos": pos_of_row[rows]}
        out.update({c: part[c][mask].reset_index(drop=True) for c in cols})
        return pd.DataFrame(out)

    present = plan.parsed.present if plan.parsed is not None else frozenset()
    columns = set(present)
    if "email" in columns:
        columns.add("email_domain")
    return ContactBatch(
        contacts=contacts,
        codes=keep(checked.codes, ("kind", "code")),
        profile=keep(checked.profile, ("questionnaire", "answer")),
        columns=frozenset(columns),
        empty_clears=empty_clears,
        custom=tuple(_custom_rows(c, valid) for c in plan.custom),
        user=user,
        blank=_valid_rows(valid, plan.blank),
    )


def _run_interactions(
    db: Database, plan: ImportPlan, *, strict: bool, dry_run: bool, progress: Progress | None, user: str
) -> ImportReport:
    assert plan.parsed is not None
    parsed = replace(plan.parsed, log=plan.parsed.log.copy())
    checked = check_interaction_fields(parsed)
    if progress:
        progress(len(checked.frame), len(checked.frame), "checking")
    with db.read() if dry_run else db.write() as conn:
        if not dry_run:
            require(conn, user, "import")
        valid, db_errors = check_interactions_db(conn, checked)
        errors = _all_errors(parsed.log.frame(), db_errors)
        nvalid = int(valid.sum())
        if dry_run:
            return _report(plan, errors, nvalid, inserted=nvalid, updated=0, applied=False)
        _refuse(_report(plan, errors, nvalid, inserted=0, updated=0, applied=False), strict)
        inserted = write_interactions(
            conn, checked.frame.loc[valid].reset_index(drop=True), created_by="import", progress=progress
        )
        report = _report(plan, errors, nvalid, inserted=inserted, updated=0, applied=True)
        _audit(conn, user, report)
    return report


def _run_outcomes(
    db: Database, plan: ImportPlan, *, strict: bool, dry_run: bool, progress: Progress | None, user: str
) -> ImportReport:
    assert plan.parsed is not None
    parsed = replace(plan.parsed, log=plan.parsed.log.copy())
    checked = check_outcome_fields(parsed)
    if progress:
        progress(len(checked.frame), len(checked.frame), "checking")
    with db.read() if dry_run else db.write() as conn:
        if not dry_run:
            require(conn, user, "import")
        valid, db_errors = check_outcomes_db(conn, checked)
        errors = _all_errors(parsed.log.frame(), db_errors)
        nvalid = int(valid.sum())
        rows = checked.frame.loc[valid].reset_index(drop=True)
        if dry_run:
            inserted, updated = write_outcomes(conn, rows, dry_run=True)
            return _report(plan, errors, nvalid, inserted=inserted, updated=updated, applied=False)
        _refuse(_report(plan, errors, nvalid, inserted=0, updated=0, applied=False), strict)
        inserted, updated = write_outcomes(conn, rows, created_by=user or "import", progress=progress)
        report = _report(plan, errors, nvalid, inserted=inserted, updated=updated, applied=True)
        _audit(conn, user, report)
    return report


# ---------------------------------------------------------------------------------------------- one call


def import_contacts(
    db: Database,
    source: Any,
    *,
    strict: bool = False,
    progress: Progress | None = None,
    mapping: Any = None,
    overrides: Map[str, str] | None = None,
    new_fields: str = "auto",
    date_format: str = "auto",
    key: str | None = None,
    sheet: str | int | None = None,
    empty_clears: bool = False,
    dry_run: bool = False,
    user: str | None = None,
) -> ImportReport:
    """Import (insert or update) contacts from a CSV or Excel file, mapped automatically unless told otherwise."""
    if progress:
        progress(0, 1, "reading")
    plan = plan_import(
        db,
        source,
        "contacts",
        mapping=mapping,
        overrides=overrides,
        new_fields=new_fields,
        date_format=date_format,
        key=key,
        sheet=sheet,
    )
    return run_import(
        db, plan, strict=strict, empty_clears=empty_clears, dry_run=dry_run, progress=progress, user=user
    )


def validate_contacts(
    db: Database, source: Any, *, progress: Progress | None = None, **options: Any
) -> ImportReport:
    """Check a contacts file against every rule and the stored data; writes nothing."""
    return import_contacts(db, source, progress=progress, dry_run=True, **options)


def _import_records(
    kind: str,
    db: Database,
    source: Any,
    *,
    strict: bool = False,
    progress: Progress | None = None,
    mapping: Any = None,
    overrides: Map[str, str] | None = None,
    date_format: str = "auto",
    sheet: str | int | None = None,
    dry_run: bool = False,
    user: str | None = None,
) -> ImportReport:
    """Interactions and outcomes: records about stored contacts, so a file never adds a field (new_fields skip)."""
    if progress:
        progress(0, 1, "reading")
    plan = plan_import(
        db, source, kind, mapping=mapping, overrides=overrides, new_fields="skip", date_format=date_format, sheet=sheet
    )
    return run_import(db, plan, strict=strict, dry_run=dry_run, progress=progress, user=user)


def import_interactions(db: Database, source: Any, **options: Any) -> ImportReport:
    """Append interactions to the log from a CSV or Excel file; strict: any error -> nothing written."""
    return _import_records("interactions", db, source, **options)


def validate_interactions(
    db: Database, source: Any, *, progress: Progress | None = None, **options: Any
) -> ImportReport:
    """Check an interactions file against every rule and the stored contacts; writes nothing."""
    return import_interactions(db, source, progress=progress, dry_run=True, **options)


def import_outcomes(db: Database, source: Any, **options: Any) -> ImportReport:
    """Add outcomes (orders, sign-ups ...) from a CSV or Excel file; a stored (kind, reference) is updated, not added."""
    return _import_records("outcomes", db, source, **options)


def validate_outcomes(
    db: Database, source: Any, *, progress: Progress | None = None, **options: Any
) -> ImportReport:
    """Check an outcomes file against every rule and the stored contacts; writes nothing."""
    return import_outcomes(db, source, progress=progress, dry_run=True, **options)
