"""A SQLAlchemy dialect that writes Spark SQL: backtick identifiers, `:name` parameters, Spark's own types and fold.

The filter compiler (segcore/_filter_sql.py) and the chart buckets (segcore/_stats.py) build SQLAlchemy Core
expressions over the application's tables. Compiled with `SparkDialect`, the same expressions become Spark SQL text
for `spark.sql(sql, args=params)`:

- every value is a named bound parameter (`:country_1`); `IN` lists are expanded to one parameter per value;
- identifiers are always quoted with backticks, and the application's table names (`contacts`, `contact_codes`,
  `interactions`, `profile_answers`, `custom_values`) are rewritten to the temporary views of one contact source;
- booleans are native (`true`, `IS true`): Spark 4 refuses integers where a boolean is expected;
- `folded(col)` (segcore/_fold.py) is spelled in Spark functions, by a table that `fold` itself makes, so a text
  filter matches the same contacts as on SQLite and PostgreSQL (see `FOLD_LIMITS` for the characters it cannot);
- `LIKE ... ESCAPE '/'` is Spark's own syntax; `in_code_point_order` needs nothing, as Spark compares strings by
  their UTF-8 bytes, which is code-point order.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import compiler as sa_compiler
from sqlalchemy.sql.elements import Tuple

from .._fold import fold, folded

__all__ = ["FOLD_LIMITS", "FOLD_VARIABLES", "SparkDialect", "fold_tables", "install_fold"]

FOLD_LIMITS = (
    "Spark folds a value character by character through a table made by segcore's fold itself. Two rare cases "
    "differ from fold: characters outside the Basic Multilingual Plane (mathematical letters such as 𝐀) are kept "
    "as they are, and marks that are letters in their script (a kana voicing mark, Hangul jamo) are not recomposed "
    "with the character before them."
)

_BMP = 0x10000


@cache
def fold_tables() -> tuple[str, str, list[str], list[str], str]:
    """(from, to) for `translate` of every character whose fold is one character or none; (keys, values) of every
    character whose fold differs from it; and a regex class of the characters whose fold is several characters."""
    single_from: list[str] = []
    single_to: list[str] = []
    dropped: list[str] = []
    keys: list[str] = []
    values: list[str] = []
    multi: list[int] = []
    for cp in range(_BMP):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        out = fold(ch)
        if out == ch:
            continue
        keys.append(ch)
        values.append(out)
        if len(out) == 1:
            single_from.append(ch)
            single_to.append(out)
        elif not out:
            dropped.append(ch)
        else:
            multi.append(cp)
    # translate() deletes the characters of `from` that have no counterpart in `to`: the dropped ones go last.
    return "".join(single_from + dropped), "".join(single_to), keys, values, _regex_class(multi)


def _regex_class(code_points: list[int]) -> str:
    runs: list[list[int]] = []
    for cp in code_points:
        if runs and cp == runs[-1][1] + 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    parts = [f"\\x{{{lo:04X}}}" if lo == hi else f"\\x{{{lo:04X}}}-\\x{{{hi:04X}}}" for lo, hi in runs]
    return "[" + "".join(parts) + "]"


class SparkIdentifierPreparer(sa_compiler.IdentifierPreparer):
    """Backticks around every identifier."""

    def __init__(self, dialect: SparkDialect) -> None:
        super().__init__(dialect, initial_quote="`", escape_quote="`")

    def _requires_quotes(self, value: str) -> bool:
        return True


class SparkTypeCompiler(sa_compiler.GenericTypeCompiler):
    """Spark SQL's type names for the casts the compilers write."""

    def visit_string(self, type_: Any, **kw: Any) -> str:
        return "STRING"

    visit_VARCHAR = visit_CHAR = visit_NVARCHAR = visit_NCHAR = visit_TEXT = visit_text = visit_unicode = (  # noqa: N815
        visit_string
    )
    visit_unicode_text = visit_string

    def visit_integer(self, type_: Any, **kw: Any) -> str:
        return "INT"

    def visit_big_integer(self, type_: Any, **kw: Any) -> str:
        return "BIGINT"

    def visit_small_integer(self, type_: Any, **kw: Any) -> str:
        return "SMALLINT"

    def visit_numeric(self, type_: Any, **kw: Any) -> str:
        return "DOUBLE"

    def visit_float(self, type_: Any, **kw: Any) -> str:
        return "DOUBLE"

    def visit_boolean(self, type_: Any, **kw: Any) -> str:
        return "BOOLEAN"

    def visit_date(self, type_: Any, **kw: Any) -> str:
        return "DATE"


class SparkCompiler(sa_compiler.SQLCompiler):
    """Statement compiler: the defaults, with Spark's spelling where it differs."""

    def visit_table(self, table: Any, asfrom: bool = False, **kw: Any) -> str:  # type: ignore[override]
        # FROM `segcore_x_contacts` AS `contacts`: the columns keep their table's name, the data is the view's.
        view = self.dialect.tables.get(table.name) if asfrom else None  # type: ignore[attr-defined]
        if view is None:
            return super().visit_table(table, asfrom=asfrom, **kw)
        if kw.get("from_linter"):
            kw["from_linter"].froms[table] = table.fullname
        alias = kw.get("enclosing_alias")
        if alias is not None and getattr(alias, "element", None) is table:
            # `custom_values AS cv0`: the alias names it, so only the view goes here.
            return self.preparer.quote(view)
        return f"{self.preparer.quote(view)} AS {self.preparer.quote(table.name)}"

    def visit_true(self, expr: Any, **kw: Any) -> str:
        return "true"

    def visit_false(self, expr: Any, **kw: Any) -> str:
        return "false"

    def visit_grouping_sets_func(self, fn: Any, **kw: Any) -> str:
        # GROUPING SETS ((a), (b, c), ()): one parenthesised set per expression; a tuple is one set already.
        sets = []
        for clause in fn.clauses:
            text = self.process(clause, **kw)
            sets.append(text if isinstance(clause, Tuple) else f"({text})")
        return "GROUPING SETS (" + ", ".join(sets) + ")"


class SparkDialect(DefaultDialect):
    """Compiles Core statements to Spark SQL; never connects (statements run through `spark.sql`)."""

    name = "spark"
    paramstyle = "named"
    positional = False
    supports_native_boolean = True
    supports_statement_cache = False
    preparer = SparkIdentifierPreparer  # type: ignore[assignment]
    statement_compiler = SparkCompiler
    type_compiler_cls = SparkTypeCompiler

    def __init__(self, tables: Mapping[str, str] | None = None, **kw: Any) -> None:
        self.tables: Mapping[str, str] = dict(tables or {})
        super().__init__(paramstyle="named", **kw)


# The fold tables live in session variables, set once per Spark session (`install_fold`): a query refers to them
# by name instead of carrying some 5,000 characters of tables as parameters.
FOLD_VARIABLES = ("segcore_fold_from", "segcore_fold_to", "segcore_fold_multi", "segcore_fold_map")
_SEP = "\x01"  # joins the map's keys and values for the trip to Spark; no fold table holds it


def install_fold(spark: Any) -> None:
    """Declare and set the fold tables' session variables (idempotent; a few seconds once per session)."""
    single_from, single_to, keys, values, multi = fold_tables()
    multi_keys = [k for k, v in zip(keys, values, strict=True) if len(v) > 1]
    multi_values = [v for v in values if len(v) > 1]
    types = {"segcore_fold_map": "MAP<STRING, STRING>"}
    for name in FOLD_VARIABLES:
        spark.sql(f"DECLARE OR REPLACE VARIABLE {name} {types.get(name, 'STRING')}")  # our names
    spark.sql(
        "SET VARIABLE segcore_fold_from = :f, segcore_fold_to = :t, segcore_fold_multi = :m, "
        "segcore_fold_map = map_from_arrays(split(:k, :sep), split(:v, :sep))",
        args={"f": single_from, "t": single_to, "m": multi, "k": _SEP.join(multi_keys), "v": _SEP.join(multi_values),
              "sep": _SEP},
    )


@compiles(folded, "spark")
def _folded_spark(element: folded, compiler: sa_compiler.SQLCompiler, **kw: Any) -> str:
    """fold(x) in Spark: ASCII through lower(); any other value through translate() with the table of characters
    that fold to one character or none, then, when it holds a character that folds to several, through the map of
    those, character by character. The tables are session variables (`install_fold`)."""
    (arg,) = element.clauses.clauses
    x = compiler.process(arg, **kw)
    translated = f"translate({x}, segcore_fold_from, segcore_fold_to)"
    by_char = (
        f"array_join(transform(split({translated}, ''), segcore_ch -> "
        "coalesce(element_at(segcore_fold_map, segcore_ch), segcore_ch)), '')"
    )
    return (
        f"(CASE WHEN octet_length({x}) = length({x}) THEN lower({x}) "
        f"WHEN regexp_like({x}, segcore_fold_multi) THEN {by_char} ELSE {translated} END)"
    )
