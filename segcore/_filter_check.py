"""Codes a filter names that the data does not hold: "did you mean FR?" instead of a segment that is silently empty.

`known_values(db)` reads, once per field and only when asked, the distinct values of a code or list field; the text
parser (`parse_text(..., known=...)`) and `check_known` (for JSON trees) use it. An exact code (`eq`, `in`, `ne`,
`not_in`, `has_*`) absent from the data is refused only when a close one exists: a country or language written as
a name (`France`, `Allemagne`, `French`) is mapped to its ISO code with the import's own lookup, other codes get
difflib's close matches. A code with no close value passes: the user may really mean a value nobody has yet.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Collection

import sqlalchemy as sa

from ._db import Database
from ._errors import FilterError
from ._filter_tree import Condition, Group, Node, Not, Related
from ._models import Contact, ContactCode, CustomValue, Interaction, ProfileAnswer
from .fields import BUILTIN, FieldRegistry, FieldSpec

__all__ = ["KnownValues", "check_known", "known_values", "unknown_value"]

# The values of a code or list field present in the data, or None when the field is not checked.
KnownValues = Callable[[FieldSpec, str | None], Collection[str] | None]

# A field with more distinct values than this is not checked (a free code, not a short list a user picks from).
MAX_KNOWN = 50_000
# difflib compares against every value: above this many the suggestion would cost more than it helps.
MAX_SUGGEST_FROM = 5_000
_EXACT_OPS = frozenset({"eq", "ne", "in", "not_in", "has_any", "has_all", "has_none"})

contacts = Contact.__table__
codes = ContactCode.__table__
custom_values = CustomValue.__table__
interactions = Interaction.__table__
answers = ProfileAnswer.__table__


def _checked(spec: FieldSpec) -> bool:
    # Fixed choices (gender, type...) have their own, clearer error; derived fields (age band) are never stored.
    return spec.type in ("code", "list") and not spec.choices and not spec.derived


def _read(db: Database, spec: FieldSpec, relation: str | None, source: str | None) -> frozenset[str] | None:
    if relation is None and spec.type == "list":
        col = codes.c.code
        stmt = sa.select(col).where(codes.c.kind == spec.code_kind)
    elif relation is None and spec.custom:
        col = custom_values.c.txt
        stmt = sa.select(col).where(custom_values.c.field_id == spec.custom_id)
    elif relation is None:
        col = contacts.c[spec.name]
        stmt = sa.select(col)
    elif relation == "interactions":
        col = interactions.c[spec.name]
        # Filters never count cancelled interactions, so a value only they hold matches nobody.
        stmt = sa.select(col).where(interactions.c.cancelled.is_(False))
    elif relation == "profile":
        col = answers.c[spec.name]
        stmt = sa.select(col)
    else:
        return None
    stmt = stmt.where(col.is_not(None), col != "").distinct().limit(MAX_KNOWN + 1)
    with db.read() as conn:
        if source is None:
            values = [r[0] for r in conn.execute(stmt).all()]
        else:
            # The source's own values (its views carry the application's table names): its custom field ids are
            # its own, so this database's values would answer for another field.
            from .evaluation.spark import source_for

            values = [r[0] for r in source_for(conn, source).rows(stmt)]
    return None if len(values) > MAX_KNOWN else frozenset(str(v) for v in values)


def known_values(db: Database, source: str | None = None) -> KnownValues:
    """`known(spec, relation)`: the values of a code or list field in `db` (in the contact `source` when one is
    named, counted in Spark), read once per field when first asked.

    None for fields that are not checked (text, numbers, dates, fixed choices, derived fields, very many values).
    The answer is cached in the returned function: make a new one when the data may have changed."""
    cache: dict[tuple[str | None, str, int | None], frozenset[str] | None] = {}
    lock = threading.Lock()

    def known(spec: FieldSpec, relation: str | None = None) -> frozenset[str] | None:
        if not _checked(spec):
            return None
        key = (relation, spec.name, spec.custom_id)
        with lock:
            if key not in cache:
                cache[key] = _read(db, spec, relation, source)
            return cache[key]

    return known


def _named_code(spec: FieldSpec, relation: str | None, written: str) -> str | None:
    """The ISO code of a country or language written as a name (en/fr/de/es) or a near miss, else None."""
    if relation is not None or spec.custom or spec.name not in ("country", "language"):
        return None
    import pandas as pd  # the import's lookups read a column; loaded only when a name needs one

    from .imports.values import parse_countries, parse_languages

    parse = parse_countries if spec.name == "country" else parse_languages
    read = parse(pd.Series([written], dtype=object))
    if not read.bad[0] and read.values.iloc[0]:
        return str(read.values.iloc[0])
    return read.suggestions[0][1] if read.suggestions else None


def _typos(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from a to b: optimal string alignment distance."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def _close(stored: str, values: Collection[str]) -> list[str]:
    """Up to three values a typo away (one edit for short codes, two from five characters), closest first."""
    target = stored.lower()
    limit = 1 if len(target) <= 4 else 2
    scored: list[tuple[int, float, str]] = []
    for value in values:
        candidate = value.lower()
        # Ratios alone mislead on short codes (WEST is as "close" to EAST as NEWZ to NEWS): count typos.
        if abs(len(candidate) - len(target)) > limit or len(candidate) > 60:
            continue
        typos = _typos(target, candidate)
        if 0 < typos <= limit or typos == 0 and value != stored:
            ratio = difflib.SequenceMatcher(None, target, candidate).ratio()
            scored.append((typos, -ratio, value))
    return [value for _, _, value in sorted(scored)[:3]]


def _or_list(values: list[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def unknown_value(
    spec: FieldSpec, relation: str | None, written: str, stored: str, known: KnownValues
) -> str | None:
    """The "did you mean" message for a code absent from the data with a close one, or None when it may stand.

    `written` is the value as the user wrote it, `stored` the same normalised as the field stores codes."""
    if not _checked(spec):
        return None
    values = known(spec, relation)
    if values is None or stored in values:
        return None
    suggestions: list[str] = []
    named = _named_code(spec, relation, written)
    if named is not None and named != stored:
        suggestions = [named]
    elif len(values) <= MAX_SUGGEST_FROM:
        suggestions = _close(stored, values)
    if not suggestions:
        return None
    shown = written if len(written) <= 40 else written[:37] + "..."
    return f"{spec.label}: {shown!r} is not a value in your data; did you mean {_or_list(suggestions)}?"


def check_known(node: Node, known: KnownValues, fields: FieldRegistry | None = None) -> None:
    """Refuse, with a "did you mean", an exact code of a validated tree (e.g. from JSON) that the data lacks."""
    fields = fields or BUILTIN

    def walk(n: Node, relation: str | None) -> None:
        if isinstance(n, Condition):
            spec = fields.get(n.field, relation)
            if spec is None or n.op not in _EXACT_OPS:
                return
            for value in n.value if isinstance(n.value, tuple) else (n.value,):
                message = unknown_value(spec, relation, str(value), str(value), known)
                if message is not None:
                    raise FilterError(message)
        elif isinstance(n, Group):
            for child in n.children:
                walk(child, relation)
        elif isinstance(n, Not):
            walk(n.child, relation)
        elif isinstance(n, Related):
            walk(n.where, n.relation)

    walk(node, None)
