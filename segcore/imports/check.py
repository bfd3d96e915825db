"""Import stage 3 of read → map → check → write: every rule of a mapped file, column by column, then the rules
that need the stored data (company references, type changes, new contacts' required fields).

The map stage hands over text already normalised (dates as YYYY-MM-DD, decimals with a dot, country codes...), so
the rules here are the data contract's (SPEC §1) and nothing else. Vectorised with pandas/pyarrow masks: never a
Python loop per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Table, select

from .._models import Base
from ..fields import EVALUATIONS, LIST_FIELDS
from .report import ErrorLog

__all__ = [
    "CONTACT_COLUMNS",
    "CONTACT_FRAME_COLUMNS",
    "CONTACT_REQUIRED",
    "COUNTRY_CODES",
    "EMAIL_RE",
    "INTERACTION_COLUMNS",
    "INTERACTION_FRAME_COLUMNS",
    "INTERACTION_REQUIRED",
    "LANGUAGE_CODES",
    "OUTCOME_COLUMNS",
    "OUTCOME_REQUIRED",
    "CheckedContacts",
    "CheckedInteractions",
    "CheckedOutcomes",
    "Parsed",
    "check_contact_fields",
    "check_contacts_against_db",
    "check_interaction_fields",
    "check_interactions_db",
    "check_outcome_fields",
    "check_outcomes_db",
]

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
OUTCOME_REQUIRED = ("contact_no", "date", "kind")
OUTCOME_COLUMNS = ("contact_no", "date", "kind", "amount", "reference")


_CONTACTS: Table = Base.metadata.tables["contacts"]
_CODES: Table = Base.metadata.tables["contact_codes"]
_PROFILE: Table = Base.metadata.tables["profile_answers"]
_INTERACTIONS: Table = Base.metadata.tables["interactions"]
_OUTCOMES: Table = Base.metadata.tables["outcomes"]
# An outcome kind is a code like an interaction template: ORDER, SIGNUP, REPLY.
_KIND_RE = r"[A-Z0-9][A-Z0-9_.\-]{0,19}"

EMAIL_RE = r"[^\s@,;:<>()\[\]\\\"]+@([^\s@,;:<>()\[\]\\\".]+\.)+[^\s@,;:<>()\[\]\\\".0-9]{2,}"
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False, "": False}
_MAX_MONEY = 999_999_999_999.99
_MAX_INT = 2_147_483_647


@dataclass(frozen=True, eq=False)
class Parsed:
    """A file read and mapped: the target columns as normalised text, the line of each row, what failed so far."""

    kind: str
    encoding: str
    frame: pd.DataFrame  # every target column by its field name ('' where the file does not map it)
    lines: np.ndarray
    present: frozenset[str]  # the targets the file maps
    unknown: tuple[str, ...]  # the file's columns that feed nothing
    log: ErrorLog
    ragged: int
    bad: np.ndarray | None = None  # rows the map stage already refused (a value it could not read)


# --------------------------------------------------------------------------------------------------------------------
# Column checks (vectorised: one mask per rule, never a Python loop per row)


class _Checker:
    """Runs the rules on one parsed frame and remembers which rows failed."""

    def __init__(self, parsed: Parsed) -> None:
        self.frame = parsed.frame
        self.lines = parsed.lines
        self.log = parsed.log
        self.bad = parsed.bad.copy() if parsed.bad is not None else np.zeros(len(parsed.frame), dtype=bool)
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
class CheckedContacts:
    parsed: Parsed
    frame: pd.DataFrame  # CONTACT_FRAME_COLUMNS for every row (valid or not), normalised
    bad: np.ndarray
    codes: pd.DataFrame  # row, kind, code
    profile: pd.DataFrame  # row, questionnaire, answer


def check_contact_fields(parsed: Parsed) -> CheckedContacts:
    ck = _Checker(parsed)
    f = parsed.frame
    n = len(f)
    out: dict[str, Any] = {}
    # A file that maps no name or type column only updates contacts (or leaves the type to the stored data): the
    # database stage asks new contacts for them.
    for name in ("contact_no", "name"):
        if name in parsed.present or name == "contact_no":
            ck.required(name)
        ck.max_length(name, _text_length(_CONTACTS, name))
        out[name] = f[name]
    if "type" in parsed.present:
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
    looks = _fullmatch(email, EMAIL_RE)
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
    # NaN stays: a spend never given is "not set", not 0.
    out["total_spent"] = spent.clip(lower=0.0)
    count = ck.integer("purchase_count", 0, _MAX_INT, "must be a whole number, 0 or more")
    out["purchase_count"] = count.clip(lower=0)
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

    out["attributes"] = pd.Series("", index=f.index, dtype="str")

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
    return CheckedContacts(parsed=parsed, frame=frame, bad=ck.bad, codes=codes_frame, profile=profile_frame)


# --------------------------------------------------------------------------------------------------------------------
# Contacts: the rules that need the database


def _db_contacts(conn: Connection) -> pd.DataFrame:
    rows = conn.execute(select(_CONTACTS.c.contact_no, _CONTACTS.c.type, _CONTACTS.c.company_no)).all()
    frame = pd.DataFrame(rows, columns=["contact_no", "type", "company_no"])
    return frame.astype({"contact_no": "str", "type": "str"}).assign(
        company_no=frame["company_no"].fillna("")
    )


def check_contacts_against_db(
    conn: Connection,
    frame: pd.DataFrame,
    lines: np.ndarray,
    valid: np.ndarray,
    present: Iterable[str] | None = None,
) -> tuple[np.ndarray, pd.DataFrame, int]:
    """Apply the rules that need stored data; returns (valid mask, errors, how many valid rows exist already).

    A person's company_no must name a company (in the file or stored); a company that would keep persons cannot
    become a person. Rejecting one row can make another one right or wrong, so both rules run until nothing changes.
    `present` names the columns the file maps (None: all): without a type column a stored contact keeps its type and
    a new one is a person (written into `frame`); without a name column a new contact is refused.
    """
    log = ErrorLog()
    valid = valid.copy()
    stored = _db_contacts(conn)
    cn = frame["contact_no"]
    stored_type = stored.set_index("contact_no")["type"]
    db_type = (
        cn.map(stored_type).fillna("").to_numpy() if len(stored) else np.full(len(frame), "", dtype=object)
    )
    mapped = None if present is None else frozenset(present)
    if mapped is not None and "type" not in mapped:
        frame["type"] = np.where(db_type != "", db_type, "person")
    if mapped is not None and "name" not in mapped:
        new = valid & (db_type == "")
        log.add(lines[new], "name", "a new contact needs a name: the file has no name column", "")
        valid &= ~new
    if mapped is not None and "company_no" not in mapped:
        # The stored company stays: the reference rules have nothing new to check.
        frame["company_no"] = ""
    ftype = frame["type"].to_numpy()
    fcomp = frame["company_no"]
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
# Interactions


@dataclass(frozen=True, eq=False)
class CheckedInteractions:
    parsed: Parsed
    frame: pd.DataFrame
    bad: np.ndarray


def check_interaction_fields(parsed: Parsed) -> CheckedInteractions:
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
    return CheckedInteractions(parsed=parsed, frame=frame, bad=ck.bad)


def check_interactions_db(conn: Connection, checked: CheckedInteractions) -> tuple[np.ndarray, pd.DataFrame]:
    known = pd.Index(pd.Series(conn.execute(select(_CONTACTS.c.contact_no)).scalars().all(), dtype="str"))
    cn = checked.frame["contact_no"]
    unknown = ~checked.bad & (cn != "").to_numpy() & ~cn.isin(known).to_numpy()
    log = ErrorLog()
    log.add(
        checked.parsed.lines[unknown], "contact_no", "is not a known contact number", cn.to_numpy()[unknown]
    )
    return ~checked.bad & ~unknown, log.frame()


# --------------------------------------------------------------------------------------------------------------------
# Outcomes


@dataclass(frozen=True, eq=False)
class CheckedOutcomes:
    parsed: Parsed
    frame: pd.DataFrame  # OUTCOME_COLUMNS: date ISO text, kind upper-case, amount float (NaN = none), reference text
    bad: np.ndarray


def check_outcome_fields(parsed: Parsed) -> CheckedOutcomes:
    """The per-file rules of an outcomes file; a (kind, reference) seen before in the file is rejected on later lines."""
    ck = _Checker(parsed)
    f = parsed.frame
    for name in OUTCOME_REQUIRED:
        ck.required(name)
    ck.max_length("contact_no", _text_length(_CONTACTS, "contact_no"))
    date = ck.date("date")
    kind = f["kind"].str.strip().str.upper()
    filled = (kind != "").to_numpy()
    ck.fail(
        filled & ~_fullmatch(kind, _KIND_RE),
        "kind",
        "is not an outcome code: 1 to 20 letters, digits, '-', '_' or '.' (for example ORDER)",
    )
    amount = ck.decimal("amount")
    reference = f["reference"].str.strip()
    ck.max_length("reference", _text_length(_OUTCOMES, "reference"))
    # The same order number twice in one file is one order: the first line counts, later ones are reported.
    has_ref = (reference != "").to_numpy()
    if has_ref.any():
        key = kind + "\x1f" + reference
        dup = (key.duplicated(keep="first") & pd.Series(has_ref, index=f.index)).to_numpy()
        if dup.any():
            first_line = pd.Series(parsed.lines, index=f.index).groupby(key.to_numpy()).transform("first")
            ck.fail(dup, "reference", ("already appears on line " + first_line.astype(str)).to_numpy())
    frame = pd.DataFrame(
        {"contact_no": f["contact_no"], "date": date, "kind": kind, "amount": amount, "reference": reference}
    )
    return CheckedOutcomes(parsed=parsed, frame=frame, bad=ck.bad)


def check_outcomes_db(conn: Connection, checked: CheckedOutcomes) -> tuple[np.ndarray, pd.DataFrame]:
    """Rows whose contact number is not stored are errors; returns (valid mask, errors)."""
    known = pd.Index(pd.Series(conn.execute(select(_CONTACTS.c.contact_no)).scalars().all(), dtype="str"))
    cn = checked.frame["contact_no"]
    unknown = ~checked.bad & (cn != "").to_numpy() & ~cn.isin(known).to_numpy()
    log = ErrorLog()
    log.add(
        checked.parsed.lines[unknown], "contact_no", "is not a known contact number", cn.to_numpy()[unknown]
    )
    return ~checked.bad & ~unknown, log.frame()
