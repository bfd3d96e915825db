"""A contact source in Spark: a table or a Parquet/CSV location, mapped to our fields, read where it lies.

Opening a source reads its schema (nothing else), checks that every mapped column exists with a type that fits its
field, and registers five temporary views in the Spark session, shaped like the application's tables:

    <prefix>_contacts         id (= the contact number), contact_no and every built-in contact field, normalised
                              as an import stores them (codes upper or lower case, e-mails lower case, ...)
    <prefix>_contact_codes    kind, code, contact_id: the list fields (a `;`-separated text or an array column)
    <prefix>_profile_answers  questionnaire, answer, contact_id: a `Q=A;Q=A` text or an array column
    <prefix>_custom_values    field_id, contact_id, num, txt, day: the source's own custom fields
    <prefix>_interactions     the interactions table or location, when there is one (else empty)

so that the filter compiler (segcore/_filter_sql.py) and the chart buckets (segcore/_stats.py) run unchanged; only
the table names differ, and `SparkDialect` writes them. Every operation runs in Spark and returns a few numbers or
the contact numbers asked for (through Arrow).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy import func, select

from .._errors import NotFoundError, UsageError
from .._filter_sql import compile_filter
from .._filter_tree import Node
from .._models import Contact, ContactCode, CustomValue, ProfileAnswer
from .._stats import DIMENSIONS, UNKNOWN, Distribution, _bucket_expr, _ordered, dimension_of
from ..fields import BUILTIN, CONTACT_FIELDS, INTERACTION_FIELDS, LIST_FIELDS, FieldRegistry, custom_spec
from ..imports.mapping import CONTACT_TARGETS, INTERACTION_TARGETS, suggest_mapping
from ..imports.mapping import Mapping as ColumnMapping
from .dialect import SparkDialect, install_fold
from .errors import SourceConfigError, SparkUnavailable
from .session import is_connect, quiet, spark_session

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "FORMATS",
    "STEP_KINDS",
    "Location",
    "SourceCount",
    "SourceSpec",
    "SparkSource",
    "StepChanges",
    "StepOptions",
    "StepPass",
    "StepScan",
    "custom_choices",
    "open_source",
    "source_fields",
]

FORMATS = ("parquet", "csv")
STEP_KINDS = ("add", "refine", "reduce")
TABLES = ("contacts", "contact_codes", "profile_answers", "custom_values", "interactions")

contacts = Contact.__table__
codes_t = ContactCode.__table__

# Built-in contact fields a source may feed, by the kind of Spark column they accept.
_TEXT_FIELDS = ("contact_no", "company_no", "name", "email", "phone", "city", "post_code", "first_name", "last_name")
_SPARK_NUMBER = ("ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType")
_SPARK_INTEGRAL = ("ByteType", "ShortType", "IntegerType", "LongType")
_SPARK_DATE = ("DateType", "TimestampType", "TimestampNTZType")
# Members up to this many are broadcast to the scan of the contacts (a hash table of their numbers in each task);
# beyond it Spark chooses (a shuffle of both sides).
BROADCAST_MEMBERS = 5_000_000
_MEMBER_VIEWS_KEPT = 4  # the member sets of the last questions, kept as views
_ARROW_MEMBERS = 200_000  # more members than this go to a local Spark through a Parquet file


@dataclass(frozen=True)
class Location:
    """Where data lies in Spark: a table name (`kind` "table") or a Parquet/CSV location (`kind` "path")."""

    kind: str  # "table" | "path"
    location: str
    format: str = ""  # for a path: "parquet" | "csv"

    def __post_init__(self) -> None:
        if self.kind not in ("table", "path"):
            raise UsageError(f"a source location is a table or a path, not {self.kind!r}")
        if not self.location.strip():
            raise UsageError(f"the {self.kind} of a source cannot be empty")
        if self.kind == "path" and self.format not in FORMATS:
            raise UsageError(f"a source path is read as {' or '.join(FORMATS)}, not {self.format!r}")

    def describe(self) -> str:
        return f"table {self.location}" if self.kind == "table" else f"{self.format} {self.location}"


@dataclass(frozen=True)
class SourceSpec:
    """Everything that defines a source: its Spark, its contacts and their mapping, optionally its interactions."""

    name: str
    spark_url: str
    contacts: Location
    mapping: ColumnMapping | None = None  # None: suggested from the column names, as for a file import
    interactions: Location | None = None
    interactions_mapping: ColumnMapping | None = None


@dataclass(frozen=True)
class SourceCount:
    """How many contacts of a source a filter matches: not flagged, flagged "exclude from segments", and all."""

    matched: int
    excluded: int
    total: int


@dataclass(frozen=True)
class StepScan:
    """What an Add, Refine or Reduce would do to a member set: sizes before and after, who enters and leaves."""

    kind: str
    matched: int  # contacts the filter matches (C'; for Add, without the flagged ones unless exclusion is ignored)
    before: int
    after: int
    entering: int
    leaving: int


@dataclass(frozen=True)
class StepChanges:
    """What a step does to a member set, as the engine's commit needs it: the contact numbers it adds or removes
    (only those come back from Spark), how many contacts it matched, and the named inputs nothing matched."""

    changed: tuple[str, ...]
    matched: int  # Add: C' (members included); Refine/Reduce: members matched; remove by hand: the named contacts
    unmatched: tuple[str, ...] = ()  # e-mail addresses no contact has


@dataclass(frozen=True)
class StepPass:
    """A step's preview in one pass over the source: the counts and, per flag, the charts of what it marks."""

    scan: StepScan
    skipped_excluded: int  # contacts the "exclude from segments" flag kept out of an Add
    before: dict[str, Distribution]
    after: dict[str, Distribution]
    entering: tuple[str, ...]  # a sample of contact numbers that would join
    leaving: tuple[str, ...]  # a sample of contact numbers that would leave


@dataclass(frozen=True)
class StepOptions:
    """The options of a step, named as segcore's ActionOptions names them (SPEC §3).

    Add: persons or companies only (`contact_type`), every contact of a matched contact's company
    (`expand_companies`), the company of each matched person (`related_companies`), flagged contacts kept
    (`ignore_exclusion`). Refine and Reduce: a whole company when any of its contacts matches (`entire_companies`)."""

    expand_companies: bool = False
    related_companies: bool = False
    ignore_exclusion: bool = False
    entire_companies: bool = False
    contact_type: str | None = None  # "person" | "company" | None

    def check(self, kind: str) -> None:
        add_only = {"expand_companies": self.expand_companies, "related_companies": self.related_companies,
                    "ignore_exclusion": self.ignore_exclusion, "contact_type": self.contact_type is not None}  # fmt: skip
        used = [name for name, on in add_only.items() if on]
        if kind != "add" and used:
            raise UsageError(f"{', '.join(used)} {'go' if len(used) > 1 else 'goes'} with add only, not {kind}")
        if self.entire_companies and kind not in ("refine", "reduce"):
            raise UsageError("entire_companies goes with refine or reduce only")
        if self.contact_type not in (None, "person", "company"):
            raise UsageError(f"contact_type is person or company, not {self.contact_type!r}")


@dataclass(frozen=True)
class _Views:
    prefix: str
    names: dict[str, str] = field(default_factory=dict)


def _type_name(data_type: Any) -> str:
    return type(data_type).__name__


def _describe_type(data_type: Any) -> str:
    try:
        return str(data_type.simpleString())
    except Exception:  # noqa: BLE001 - a type without a short form is named by its class
        return _type_name(data_type)


def _is_string_array(data_type: Any) -> bool:
    return _type_name(data_type) == "ArrayType" and _type_name(data_type.elementType) == "StringType"


def _accepts(target_type: str, target: str, data_type: Any) -> bool:
    """Whether a Spark column of `data_type` can feed a field of `target_type`."""
    name = _type_name(data_type)
    if target_type in ("text", "code"):
        # Numbers kept as numbers (a contact or post code stored as an integer) are text once cast.
        return name == "StringType" or (name in _SPARK_INTEGRAL and target in _TEXT_FIELDS)
    if target_type == "number":
        return name in _SPARK_NUMBER
    if target_type == "date":
        return name in _SPARK_DATE
    if target_type == "boolean":
        return name == "BooleanType"
    if target_type in ("list", "profile"):
        return name == "StringType" or _is_string_array(data_type)
    return False


def _expected(target_type: str) -> str:
    return {
        "text": "text (string)",
        "code": "text (string)",
        "number": "a number",
        "date": "a date",
        "boolean": "a boolean",
        "list": "a ';'-separated text or an array of text",
        "profile": "a 'Q=A;Q=A' text or an array of text",
    }[target_type]


def _field_type(target: str, choice_type: str, kind: str) -> str:
    if kind == "interactions":
        spec = INTERACTION_FIELDS.get(target)
        if spec is not None:
            return spec.type
        return {"contact_no": "text", "cost": "number", "duration_min": "number"}[target]
    if target == "profile":
        return "profile"
    if target in ("first_name", "last_name"):
        return "text"
    spec = CONTACT_FIELDS.get(target)
    if spec is not None:
        return spec.type
    return choice_type or "text"


def _spark_field_type(data_type: Any) -> str:
    """The field type a new custom field gets from a Spark column ("" = a type that cannot be a field)."""
    name = _type_name(data_type)
    if name == "StringType":
        return "text"
    if name in _SPARK_NUMBER:
        return "number"
    if name in _SPARK_DATE:
        return "date"
    if name == "BooleanType":
        return "boolean"
    if _is_string_array(data_type):
        return "list"
    return ""


def custom_choices(mapping: ColumnMapping) -> list[tuple[int, str, str, str]]:
    """(id, field, type, source column) of a source's own custom fields, ids from 1 in mapping order."""
    out: list[tuple[int, str, str, str]] = []
    for choice in mapping.columns:
        if choice.field and choice.field not in CONTACT_TARGETS:
            out.append((len(out) + 1, choice.field, choice.new_type or "text", choice.source))
    return out


def source_fields(mapping: ColumnMapping) -> FieldRegistry:
    """The fields a filter over a source may name: the built-in ones (an unmapped one reads as empty in the views)
    and the source's own custom fields with their types, numbered as its `custom_values` view numbers them.

    Read from the contacts mapping alone (the one stored when the source was added), so parsing, describing and
    the widgets know a source's fields without starting Spark, and agree with the opened source's views."""
    customs = custom_choices(mapping)
    if not customs:
        return BUILTIN
    labels = {c.field: c.label or c.source for c in mapping.columns}
    return FieldRegistry.of(tuple(custom_spec(i, f, labels[f], t) for i, f, t, _ in customs))


def _view_prefix(spec: SourceSpec) -> str:
    digest = hashlib.sha1(repr((spec.name, spec.contacts, spec.interactions)).encode()).hexdigest()[:10]
    safe = re.sub(r"[^a-z0-9]+", "_", spec.name.lower()).strip("_")[:30] or "source"
    return f"segcore_{safe}_{digest}"


def _read(spark: SparkSession, where: Location, source: str) -> DataFrame:
    """The DataFrame of a location (reads the schema only); SourceConfigError, one line, when there is none."""
    try:
        if where.kind == "table":
            df = spark.table(where.location)
        elif where.format == "parquet":
            df = spark.read.parquet(where.location)
        else:
            df = spark.read.option("header", True).option("inferSchema", True).csv(where.location)
        df.schema  # noqa: B018 - Spark Connect resolves lazily: ask for the schema now
    except Exception as exc:  # noqa: BLE001 - Spark's analysis errors become one line
        text = str(exc)
        if where.kind == "table":
            raise SourceConfigError(f"source {source}: Spark has no table {where.location!r}") from None
        if "PATH_NOT_FOUND" in text or "does not exist" in text:
            raise SourceConfigError(f"source {source}: no {where.format} data at {where.location}") from None
        first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
        raise SourceConfigError(f"source {source}: cannot read {where.describe()}: {first}") from None
    return df


class SparkSource:
    """An opened source: its Spark session, its views, its field registry; every read pushed down to Spark."""

    def __init__(self, spec: SourceSpec, spark: SparkSession) -> None:
        with quiet():
            self._open(spec, spark)

    def _open(self, spec: SourceSpec, spark: SparkSession) -> None:
        # A Connect session's columns come from the Connect client's functions, whatever else runs in the process.
        if is_connect(spark):
            from pyspark.sql.connect import functions as F  # noqa: N812 - the usual name
        else:
            from pyspark.sql import functions as F  # type: ignore[no-redef]  # noqa: N812

        self.spec = spec
        self.spark = spark
        _fold_ready(spark)
        self._F = F
        self.views = _Views(_view_prefix(spec), {t: f"{_view_prefix(spec)}_{t}" for t in TABLES})
        base = _read(spark, spec.contacts, spec.name)
        self.columns: tuple[str, ...] = tuple(base.columns)
        types = {f.name: f.dataType for f in base.schema.fields}
        self.mapping = self._contact_mapping(spec.mapping, types)
        self.fields = self._registry()
        self._contacts_view(base, types)
        if spec.interactions is not None:
            inter = _read(spark, spec.interactions, spec.name)
            itypes = {f.name: f.dataType for f in inter.schema.fields}
            self.interactions_mapping: ColumnMapping | None = self._mapping_for(
                "interactions", spec.interactions_mapping, itypes, spec.interactions
            )
            self._interactions_view(inter, itypes)
        else:
            self.interactions_mapping = None
            self._empty_interactions()
        self.dialect = SparkDialect({t: self.views.names[t] for t in TABLES})
        self._member_views: dict[str, int] = {}
        self._member_dir: str | None = None

    # ------------------------------------------------------------------------------------------------- mapping

    def _contact_mapping(self, mapping: ColumnMapping | None, types: Mapping[str, Any]) -> ColumnMapping:
        return self._mapping_for("contacts", mapping, types, self.spec.contacts)

    def _mapping_for(
        self, kind: str, mapping: ColumnMapping | None, types: Mapping[str, Any], where: Location
    ) -> ColumnMapping:
        header = list(types)
        if mapping is None:
            unusable = {c: "" for c, t in types.items() if not _spark_field_type(t)}
            new_types = {i: _spark_field_type(types[c]) or "text" for i, c in enumerate(header)}
            mapping = suggest_mapping(header, kind, overrides=unusable, new_types=new_types)
        if mapping.kind != kind:
            raise SourceConfigError(f"source {self.spec.name}: the {kind} mapping is a mapping of {mapping.kind}")
        for choice in mapping.columns:
            if not choice.field:
                continue
            if choice.source not in types:
                raise SourceConfigError(
                    f"source {self.spec.name}: column {choice.source!r} (mapped to {choice.field}) is not in "
                    f"{where.describe()}"
                )
            target_type = _field_type(choice.field, choice.new_type, kind)
            if not _accepts(target_type, choice.field, types[choice.source]):
                raise SourceConfigError(
                    f"source {self.spec.name}: column {choice.source!r} is {_describe_type(types[choice.source])}, "
                    f"but {choice.field} needs {_expected(target_type)}"
                )
        if "contact_no" not in mapping.targets():
            raise SourceConfigError(
                f"source {self.spec.name}: no column of {where.describe()} is mapped to contact_no, the key"
            )
        return mapping

    def _custom_choices(self) -> list[tuple[int, str, str, str]]:
        return custom_choices(self.mapping)

    def _registry(self) -> FieldRegistry:
        return source_fields(self.mapping)

    # --------------------------------------------------------------------------------------------------- views

    def _contacts_view(self, base: DataFrame, types: Mapping[str, Any]) -> None:
        F = self._F
        targets = {f: c.source for f, c in self.mapping.targets().items()}

        def col(name: str) -> Column:
            return base[targets[name]]

        def text(name: str) -> Column:
            return col(name).cast("string")

        def code(name: str) -> Column:
            spec = CONTACT_FIELDS[name]
            value = F.trim(text(name))
            value = F.lower(value) if spec.normalize("A") == "a" else F.upper(value)
            return F.when(value == "", None).otherwise(value)

        key = F.trim(text("contact_no"))
        out: dict[str, Column] = {"id": key, "contact_no": key}
        for name, spec in CONTACT_FIELDS.items():
            if name in out or spec.derived or spec.type == "list" or name == "email_domain":
                continue
            if name not in targets:
                if name == "name" and ("first_name" in targets or "last_name" in targets):
                    parts = [F.trim(text(n)) for n in ("first_name", "last_name") if n in targets]
                    joined = F.trim(F.concat_ws(" ", *parts))
                    out[name] = F.when(joined == "", None).otherwise(joined)
                    continue
                sql_type = {"number": "double", "date": "date", "boolean": "boolean"}.get(spec.type, "string")
                default = {"gender": F.lit("unknown"), "exclude_from_segments": F.lit(False)}.get(name)
                out[name] = default if default is not None else F.lit(None).cast(sql_type)
            elif name == "email":
                out[name] = F.lower(F.trim(text(name)))
            elif spec.type == "code":
                value = code(name)
                out[name] = F.coalesce(value, F.lit("unknown")) if name == "gender" else value
            elif spec.type == "text":
                out[name] = text(name)
            elif spec.type == "number":
                out[name] = col(name).cast("bigint" if spec.integer else "double")
            elif spec.type == "date":
                out[name] = col(name).cast("date")
            elif spec.type == "boolean":
                out[name] = F.coalesce(col(name), F.lit(False))
        projected = base.select(*[v.alias(k) for k, v in out.items()])
        projected = projected.withColumn(
            "email_domain",
            F.when(F.instr(F.col("email"), "@") > 0, F.substring_index(F.col("email"), "@", -1)),
        )
        projected.createOrReplaceTempView(self.views.names["contacts"])

        # List fields (built-in and custom): one row per distinct (kind, code, contact).
        lists: list[tuple[str, str]] = [(n, n) for n in LIST_FIELDS if n in targets]
        lists += [(f"cf{i}", src) for i, _f, t, src in self._custom_choices() if t == "list"]
        frames = []
        for kind, source in lists:
            frames.append(
                base.select(key.alias("contact_id"), F.explode(self._items(base[source], types[source])).alias("c"))
                .select(F.lit(kind).alias("kind"), F.upper(F.trim("c")).alias("code"), "contact_id")
            )
        self._union(frames, "contact_codes", "kind string, code string, contact_id string", distinct=True)

        frames = []
        if "profile" in targets:
            source = targets["profile"]
            items = base.select(key.alias("contact_id"), F.explode(self._items(base[source], types[source])).alias("i"))
            items = items.where(F.instr("i", "=") > 0)
            frames.append(
                items.select(
                    F.upper(F.trim(F.substring_index("i", "=", 1))).alias("questionnaire"),
                    F.upper(F.trim(F.expr("substring(i, instr(i, '=') + 1)"))).alias("answer"),
                    "contact_id",
                )
            )
        self._union(frames, "profile_answers", "questionnaire string, answer string, contact_id string", distinct=True)

        frames = []
        for i, _f, ftype, source in self._custom_choices():
            if ftype == "list":
                continue
            value = base[source]
            num: Column | None = None
            txt: Column | None = None
            day: Column | None = None
            if ftype == "number":
                num = value.cast("double")
            elif ftype == "boolean":
                num = F.when(value, F.lit(1.0)).when(~value, F.lit(0.0))
            elif ftype == "date":
                day = value.cast("date")
            elif ftype == "code":
                txt = F.upper(F.trim(value.cast("string")))
            else:
                txt = F.trim(value.cast("string"))
            kept = num if num is not None else day if day is not None else txt
            assert kept is not None
            present = kept.isNotNull()
            if txt is not None:
                present = present & (txt != "")
            frames.append(
                base.where(present).select(
                    F.lit(i).alias("field_id"),
                    key.alias("contact_id"),
                    (num if num is not None else F.lit(None)).cast("double").alias("num"),
                    (txt if txt is not None else F.lit(None)).cast("string").alias("txt"),
                    (day if day is not None else F.lit(None)).cast("date").alias("day"),
                )
            )
        self._union(frames, "custom_values", "field_id int, contact_id string, num double, txt string, day date")

    def _items(self, column: Column, data_type: Any) -> Column:
        F = self._F
        if _is_string_array(data_type):
            items = column
        else:
            items = F.split(column, ";")
        return F.filter(F.coalesce(items, F.array().cast("array<string>")), lambda x: F.trim(x) != "")

    def _union(self, frames: list[DataFrame], table: str, schema: str, *, distinct: bool = False) -> None:
        if frames:
            df = frames[0]
            for other in frames[1:]:
                df = df.unionByName(other)
            if distinct:
                df = df.distinct()
        else:
            df = self.spark.createDataFrame([], schema)
        df.createOrReplaceTempView(self.views.names[table])

    def _interactions_view(self, base: DataFrame, types: Mapping[str, Any]) -> None:
        F = self._F
        assert self.interactions_mapping is not None
        targets = {f: c.source for f, c in self.interactions_mapping.targets().items()}

        def pick(name: str, how: str, sql_type: str) -> Column:
            if name not in targets:
                return F.lit(None).cast(sql_type)
            value = base[targets[name]]
            if how == "upper":
                return F.upper(F.trim(value.cast("string")))
            if how == "lower":
                return F.lower(F.trim(value.cast("string")))
            return value.cast(sql_type)

        df = base.select(
            F.trim(base[targets["contact_no"]].cast("string")).alias("contact_id"),
            pick("date", "", "date").alias("date"),
            pick("template", "upper", "string").alias("template"),
            pick("campaign_no", "", "string").alias("campaign_no"),
            pick("segment_no", "", "string").alias("segment_no"),
            pick("evaluation", "lower", "string").alias("evaluation"),
            pick("salesperson", "upper", "string").alias("salesperson"),
            F.lit(False).alias("cancelled"),
        )
        df.createOrReplaceTempView(self.views.names["interactions"])

    def _empty_interactions(self) -> None:
        schema = (
            "contact_id string, date date, template string, campaign_no string, segment_no string, "
            "evaluation string, salesperson string, cancelled boolean"
        )
        self.spark.createDataFrame([], schema).createOrReplaceTempView(self.views.names["interactions"])

    # -------------------------------------------------------------------------------------------------- running

    def sql(self, stmt: Any) -> tuple[str, dict[str, Any]]:
        """The Spark SQL text of a Core statement over the application's tables, and its named parameters."""
        compiled = stmt.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
        return str(compiled), dict(compiled.params)

    def run(self, stmt: Any) -> DataFrame:
        text, params = self.sql(stmt)
        return self.spark.sql(text, args=params)

    def rows(self, stmt: Any) -> list[Any]:
        """Run a Core statement over the application's table names (the source's views) and fetch its rows."""
        return self._rows(stmt)

    def _rows(self, stmt: Any) -> list[Any]:
        try:
            with quiet():
                return list(self.run(stmt).collect())
        except Exception as exc:  # noqa: BLE001 - Spark's failure in one line, nothing changed
            raise SparkUnavailable(f"source {self.spec.name}: Spark failed: {_first_line(exc)}") from None

    def _where(self, node: Node, today: dt.date) -> sa.ColumnElement[bool]:
        return compile_filter(node, today=today, fields=self.fields)

    # ------------------------------------------------------------------------------------------------ questions

    def row_count(self) -> int:
        """How many contacts the source holds."""
        return int(self._rows(select(func.count()).select_from(contacts))[0][0])

    def count(self, node: Node, *, today: dt.date | None = None) -> SourceCount:
        """The contacts `node` matches, split by the "exclude from segments" flag, and all contacts: one scan, the
        filter a flag of each row (a related-record test is a join Spark plans beside the scan, not a second
        pass over the contacts)."""
        today = today or dt.date.today()
        hit = _truth(self._where(node, today))
        flagged = contacts.c.exclude_from_segments.is_(True)
        stmt = select(
            func.count(),
            func.coalesce(func.sum(sa.case((sa.and_(hit, sa.not_(flagged)), 1), else_=0)), 0),
            func.coalesce(func.sum(sa.case((sa.and_(hit, flagged), 1), else_=0)), 0),
        ).select_from(contacts)
        total, kept, excluded = self._rows(stmt)[0]
        return SourceCount(int(kept), int(excluded), int(total))

    def matched_ids(self, node: Node, *, today: dt.date | None = None, include_excluded: bool = True) -> list[str]:
        """The contact numbers `node` matches, sorted (through Arrow)."""
        today = today or dt.date.today()
        where = [self._where(node, today)]
        if not include_excluded:
            where.append(contacts.c.exclude_from_segments.is_not(True))
        stmt = select(contacts.c.contact_no).where(*where).order_by(contacts.c.contact_no)
        try:
            with quiet():
                table = self.run(stmt).toArrow()
        except Exception as exc:  # noqa: BLE001 - Spark's failure in one line
            raise SparkUnavailable(f"source {self.spec.name}: Spark failed: {_first_line(exc)}") from None
        return [str(v) for v in table.column(0).to_pylist()]

    def matched_ids_many(
        self, nodes: Sequence[Node], *, today: dt.date | None = None, chunk: int = 200
    ) -> list[list[str]]:
        """The contact numbers each filter matches, sorted, in few Spark jobs (one UNION ALL per `chunk` filters):
        many small questions (dynamic segments' counts, overlap, the tests' scenario tables) at the price of one."""
        today = today or dt.date.today()
        out: list[list[str]] = [[] for _ in nodes]
        for first in range(0, len(nodes), chunk):
            parts = [
                select(sa.literal(i, sa.Integer).label("k"), contacts.c.contact_no).where(self._where(node, today))
                for i, node in enumerate(nodes[first : first + chunk], start=first)
            ]
            stmt = parts[0] if len(parts) == 1 else sa.union_all(*parts)
            try:
                with quiet():
                    table = self.run(stmt).toArrow()
            except Exception as exc:  # noqa: BLE001 - Spark's failure in one line
                raise SparkUnavailable(f"source {self.spec.name}: Spark failed: {_first_line(exc)}") from None
            for k, no in zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True):
                out[k].append(str(no))
        return [sorted(ids) for ids in out]

    def _members_view(self, members: Iterable[str]) -> tuple[str, int]:
        """A temporary view of the member contact numbers (sent to Spark through Arrow) and how many there are.

        Deduplicated and sorted by Arrow (millions of members in a second, not in Python's sort), and made once per
        set of members: a Builder session asks many questions of the same members. Few go as a local relation,
        many (a local Spark) as a Parquet file; either way broadcast to the scan (a hash join beside it, hinted
        while there are at most BROADCAST_MEMBERS of them) rather than shuffled and sorted with every contact."""
        values = members if isinstance(members, (list, tuple)) else list(members)
        try:
            array = pa.array(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = pa.array([str(m) for m in values], pa.string())
        array = pc.unique(array.drop_null())
        array = array.take(pc.array_sort_indices(array))
        h = hashlib.sha1()
        for buffer in array.buffers()[1:]:  # offsets and bytes of the sorted numbers (a fresh array: no offset)
            h.update(buffer or b"")
        digest = h.hexdigest()[:12]
        # This source's own views (another SparkSource of the same spec drops its own, not these).
        name = f"{self.views.prefix}_members_{id(self):x}_{digest}"
        if name in self._member_views:
            return name, self._member_views[name]
        with quiet():
            if len(array) > _ARROW_MEMBERS and not is_connect(self.spark):
                # A local Spark: many members go through a Parquet file that it scans. Sent as a local relation
                # they would stay in the driver's heap, copied into every plan (10M contacts, 2.9M members: out of
                # memory with 4 GB).
                df = self.spark.read.parquet(self._member_file(name, array))
            elif len(array):
                df = self.spark.createDataFrame(pa.table({"contact_no": array}))
            else:
                df = self.spark.createDataFrame([], "contact_no string")
            if len(array) and len(array) <= BROADCAST_MEMBERS:
                df = df.hint("broadcast")
            df.createOrReplaceTempView(name)
        self._member_views[name] = len(array)
        while len(self._member_views) > _MEMBER_VIEWS_KEPT:
            old = next(iter(self._member_views))
            del self._member_views[old]
            try:
                self.spark.catalog.dropTempView(old)
            except Exception:  # noqa: BLE001, S110 - a view already gone is no matter
                pass
            if self._member_dir is not None:
                shutil.rmtree(os.path.join(self._member_dir, old), ignore_errors=True)
        return name, len(array)

    def _member_file(self, name: str, array: pa.Array) -> str:
        """The members written as Parquet for a local Spark (a folder of this source's, removed with it)."""
        if self._member_dir is None:
            self._member_dir = tempfile.mkdtemp(prefix="segcore-members-")
            weakref.finalize(self, shutil.rmtree, self._member_dir, True)
        folder = os.path.join(self._member_dir, name)
        os.makedirs(folder, exist_ok=True)
        pq.write_table(pa.table({"contact_no": array}), os.path.join(folder, "part-0.parquet"))
        return folder

    def matched_condition(
        self, kind: str, node: Node, today: dt.date, options: StepOptions
    ) -> sa.ColumnElement[bool]:
        """C' of a step as a condition on a row of `contacts` (for WHERE; `_truth` of it for a flag in SELECT), with
        the company options applied the way the engine applies them: the company of a contact is itself for a
        company, its company_no for a person. Asked of each row in the one scan of a question, instead of joining
        the contacts to a subquery of themselves (a sort-merge join of the whole source with itself)."""
        options.check(kind)
        where = [self._where(node, today)]
        if kind == "add" and options.contact_type is not None:
            where.append(contacts.c.type == options.contact_type)
        own = sa.and_(*where) if len(where) > 1 else where[0]
        grow = options.expand_companies if kind == "add" else options.entire_companies
        related = kind == "add" and options.related_companies
        if not grow and not related:
            return own
        base = select(_org().label("org"), contacts.c.type.label("mtype"),
                      contacts.c.company_no.label("mcompany")).where(*where).subquery("base")  # fmt: skip
        parts: list[sa.ColumnElement[bool]] = [own]
        if grow:
            parts.append(_org().in_(select(base.c.org).where(base.c.org.is_not(None))))
        if related:
            parts.append(contacts.c.id.in_(select(base.c.mcompany).where(base.c.mtype == "person")))
        return sa.or_(*parts)

    def matched_set(self, kind: str, node: Node, today: dt.date, options: StepOptions) -> Any:
        """C' of a step as a subquery of contact numbers (`mid`): the contacts `matched_condition` holds for."""
        return select(contacts.c.id.label("mid")).where(self.matched_condition(kind, node, today, options)).subquery(
            "matched"
        )

    def _flags(
        self, kind: str, node: Node, members: Iterable[str], today: dt.date, options: StepOptions
    ) -> tuple[Any, dict[str, sa.ColumnElement[bool]], int]:
        """FROM contacts ⟕ members, and the booleans of each row: member before, matched (C'), member after."""
        if kind not in STEP_KINDS:
            raise UsageError(f"a step over a Spark source is add, refine or reduce, not {kind!r}")
        view, n_members = self._members_view(members)
        member_t = sa.table(view, sa.column("contact_no"))
        frm = contacts.outerjoin(member_t, member_t.c.contact_no == contacts.c.id)
        was = member_t.c.contact_no.is_not(None)
        raw = hit = _truth(self.matched_condition(kind, node, today, options))
        if kind == "add" and not options.ignore_exclusion:
            hit = sa.and_(hit, contacts.c.exclude_from_segments.is_not(True))
        after = {"add": sa.or_(was, hit), "refine": sa.and_(was, hit), "reduce": sa.and_(was, sa.not_(hit))}[kind]
        return frm, {"before": was, "matched": hit, "after": after, "raw": raw}, n_members

    def step_scan(
        self,
        kind: str,
        node: Node,
        members: Iterable[str],
        *,
        today: dt.date | None = None,
        options: StepOptions | None = None,
    ) -> StepScan:
        """What Add (M ∪ C'), Refine (M ∩ C) or Reduce (M − C) would do to the members M: one pass in Spark.

        Members the source no longer holds stay with Add and Reduce and leave with Refine."""
        today = today or dt.date.today()
        frm, flags, n_members = self._flags(kind, node, members, today, options or StepOptions())
        was, hit, after = flags["before"], flags["matched"], flags["after"]

        def total(cond: Any) -> Any:
            return func.coalesce(func.sum(sa.case((cond, 1), else_=0)), 0)

        stmt = select(
            total(was), total(hit), total(after), total(sa.and_(after, sa.not_(was))),
            total(sa.and_(was, sa.not_(after))),
        ).select_from(frm)  # fmt: skip
        found, matched, after_n, entering, leaving = (int(v) for v in self._rows(stmt)[0])
        missing = n_members - found  # members that are not (or no longer) in the source
        if kind == "refine":
            leaving += missing
        else:
            after_n += missing
        return StepScan(kind, matched, n_members, after_n, entering, leaving)

    def distributions(
        self,
        node: Node | None = None,
        *,
        dimensions: Sequence[str] = tuple(DIMENSIONS),
        today: dt.date | None = None,
    ) -> dict[str, Distribution]:
        """The charts of the contacts `node` matches (all contacts when None)."""
        today = today or dt.date.today()
        if node is None:
            frm: Any = contacts
            flag: sa.ColumnElement[bool] = sa.true()
        else:
            frm = contacts
            flag = _truth(self._where(node, today))
        return self._flagged(frm, {"set": flag}, dimensions, today)["set"]

    def member_distributions(
        self,
        members: Iterable[str],
        *,
        dimensions: Sequence[str] = tuple(DIMENSIONS),
        today: dt.date | None = None,
    ) -> dict[str, Distribution]:
        """The charts of a segment's members (contact numbers; those the source no longer holds are not counted)."""
        today = today or dt.date.today()
        view, _ = self._members_view(members)
        member_t = sa.table(view, sa.column("contact_no"))
        frm = contacts.join(member_t, member_t.c.contact_no == contacts.c.id)
        return self._flagged(frm, {"set": sa.true()}, dimensions, today)["set"]

    def step_distributions(
        self,
        kind: str,
        node: Node,
        members: Iterable[str],
        *,
        dimensions: Sequence[str] = tuple(DIMENSIONS),
        today: dt.date | None = None,
        options: StepOptions | None = None,
    ) -> tuple[dict[str, Distribution], dict[str, Distribution]]:
        """The charts before and after a step (of the members the source holds), computed together."""
        step = self.step_pass(kind, node, members, dimensions=dimensions, today=today, options=options, sample=0)
        return step.before, step.after

    def step_pass(
        self,
        kind: str,
        node: Node,
        members: Iterable[str],
        *,
        dimensions: Sequence[str] = tuple(DIMENSIONS),
        today: dt.date | None = None,
        options: StepOptions | None = None,
        sample: int = 20,
    ) -> StepPass:
        """A pending Add, Refine or Reduce in one pass (GROUPING SETS): every count the Builder shows and the charts
        before and after; one more small job for the samples of who would enter or leave."""
        today = today or dt.date.today()
        options = options or StepOptions()
        frm, flags, n_members = self._flags(kind, node, members, today, options)
        was, hit, after, raw = flags["before"], flags["matched"], flags["after"], flags["raw"]
        entering, leaving = sa.and_(after, sa.not_(was)), sa.and_(was, sa.not_(after))
        marks = {
            "before": was,
            "after": after,
            # Refine and Reduce count the members the filter matches; Add counts C' (members included).
            "matched": hit if kind == "add" else sa.and_(was, hit),
            "entering": entering,
            "leaving": leaving,
            "skipped": sa.and_(raw, sa.not_(hit)),
        }
        total, out = self._flag_counts(frm, marks, dimensions, today)
        found = int(total["before"])
        missing = n_members - found  # members the source no longer holds: they stay, or leave with Refine
        n_leaving = int(total["leaving"]) + (missing if kind == "refine" else 0)
        n_after = int(total["after"]) + (0 if kind == "refine" else missing)
        scan = StepScan(kind, int(total["matched"]), n_members, n_after, int(total["entering"]), n_leaving)
        samples: dict[str, tuple[str, ...]] = {"entering": (), "leaving": ()}
        side = "entering" if kind == "add" else "leaving"
        if sample and (scan.entering if kind == "add" else scan.leaving):
            stmt = select(contacts.c.contact_no).select_from(frm).where(marks[side]).limit(sample)
            samples[side] = tuple(str(r[0]) for r in self._rows(stmt))
        return StepPass(
            scan,
            int(total["skipped"]),
            out["before"] if dimensions else {},
            out["after"] if dimensions else {},
            samples["entering"],
            samples["leaving"],
        )

    def _values_view(self, values: Iterable[str], label: str) -> str:
        """A temporary view `v` of the given strings (sent through Arrow), for steps that name their contacts."""
        items = sorted({str(v) for v in values})
        digest = hashlib.sha1("\n".join(items).encode()).hexdigest()[:12]
        name = f"{self.views.prefix}_{label}_{digest}"
        with quiet():
            df = (
                self.spark.createDataFrame(pa.table({"v": pa.array(items, pa.string())}))
                if items
                else self.spark.createDataFrame([], "v string")
            )
            df.createOrReplaceTempView(name)
        return name

    def step_changes(
        self,
        kind: str,
        members: Iterable[str],
        *,
        node: Node | None = None,
        contact_nos: Sequence[str] = (),
        emails: Sequence[str] = (),
        today: dt.date | None = None,
        options: StepOptions | None = None,
        exclusion: bool = True,
    ) -> StepChanges:
        """The contact numbers a step adds (C' less the members) or removes (Refine: members not matched, the ones the
        source no longer holds included; Reduce and remove by hand: members matched), computed in Spark; only they
        come back. Kinds: add, refine, reduce (a filter), add_contacts / remove_contacts (numbers: NotFoundError
        for one the source does not hold), add_emails (addresses; those no contact has are returned as unmatched).
        `exclusion=False` keeps contacts flagged "exclude from segments" in an adding step."""
        today = today or dt.date.today()
        options = options or StepOptions()
        unmatched: tuple[str, ...] = ()
        if kind in STEP_KINDS:
            if node is None:
                raise UsageError(f"{kind} needs a filter")
            condition = self.matched_condition(kind, node, today, options)
        elif kind in ("add_contacts", "remove_contacts", "add_emails"):
            by_email = kind == "add_emails"
            wanted = [e.strip().lower() for e in emails if e.strip()] if by_email else [str(n) for n in contact_nos]
            vals = sa.table(self._values_view(wanted, "inputs"), sa.column("v"))
            column = contacts.c.email if by_email else contacts.c.contact_no
            condition = column.in_(select(vals.c.v))
            found = {str(r[0]) for r in self._rows(select(column).distinct().where(column.in_(select(vals.c.v))))}
            missing = tuple(v for v in dict.fromkeys(wanted) if v not in found)
            if by_email:
                unmatched = missing
            elif missing:
                shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
                raise NotFoundError(
                    f"{len(missing):,} contact number{'s' if len(missing) != 1 else ''} not found in source "
                    f"{self.spec.name}: {shown}"
                )
        else:
            raise UsageError(f"a step over a Spark source cannot be {kind!r}")
        view, n_members = self._members_view(members)
        member_t = sa.table(view, sa.column("contact_no"))
        adding = kind in ("add", "add_contacts", "add_emails")
        if adding:
            # C' is a condition on the contacts' rows (no join of the contacts to themselves); the new ones are
            # those the members do not hold (an anti join with the members sent through Arrow).
            if exclusion and not options.ignore_exclusion:
                condition = sa.and_(condition, contacts.c.exclude_from_segments.is_not(True))
            n_matched = self._rows(select(func.count()).select_from(contacts).where(condition))[0][0]
            frm = contacts.outerjoin(member_t, member_t.c.contact_no == contacts.c.id)
            ids = select(contacts.c.contact_no).select_from(frm).where(condition, member_t.c.contact_no.is_(None))
        else:
            # The members the source holds, found by a scan of the contacts with the members broadcast to it.
            held = contacts.join(member_t, member_t.c.contact_no == contacts.c.id)
            if kind == "remove_contacts":
                n_matched = self._rows(select(func.count()).select_from(contacts).where(condition))[0][0]
            if kind in ("reduce", "remove_contacts"):
                changed = self._numbers(select(contacts.c.contact_no).select_from(held).where(condition))
                return StepChanges(changed, len(changed) if kind == "reduce" else int(n_matched), unmatched)
            hit = _truth(condition)
            found, n_matched = self._rows(
                select(func.count(), func.coalesce(func.sum(sa.case((hit, 1), else_=0)), 0)).select_from(held)
            )[0]
            if found == n_members:
                ids = select(contacts.c.contact_no).select_from(held).where(sa.not_(hit))
            else:
                # Some members are no longer in the source: they leave with Refine (the members are the rows).
                matched = select(contacts.c.id.label("mid")).select_from(held).where(condition).subquery("matched")
                frm = member_t.outerjoin(matched, matched.c.mid == member_t.c.contact_no)
                ids = select(member_t.c.contact_no).select_from(frm).where(matched.c.mid.is_(None))
        return StepChanges(self._numbers(ids), int(n_matched), unmatched)

    def contact_rows(self, numbers: Sequence[str], columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The given contacts' built-in fields, keyed by contact number (a page of members, a sample)."""
        unknown = [c for c in columns if c not in contacts.c]
        if unknown:
            raise UsageError(f"unknown contact column: {', '.join(unknown)}")
        if not numbers:
            return {}
        vals = sa.table(self._values_view(numbers, "rows"), sa.column("v"))
        stmt = select(*[contacts.c[c] for c in dict.fromkeys(["contact_no", *columns])]).where(
            contacts.c.contact_no.in_(select(vals.c.v))
        )
        return {str(r["contact_no"]): r.asDict() for r in self._rows(stmt)}

    def export_values(
        self, numbers: Sequence[str], columns: Sequence[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]], dict[str, dict[str, Any]]]:
        """What an export writes of the given contacts, keyed by contact number: their built-in `columns`, their list
        fields and profile (`{field: {number: "A;B"}}`, sorted), and their custom fields (`{name: {number: value}}`).
        Four Spark jobs whatever the number of contacts."""
        rows = self.contact_rows(numbers, columns)
        if not rows:
            return rows, {}, {}
        vals = sa.table(self._values_view(numbers, "export"), sa.column("v"))
        kinds = {self._code_kind(n): n for n in LIST_FIELDS}
        kinds.update({f"cf{s.custom_id}": s.name for s in self.fields.custom if s.type == "list"})
        joined: dict[str, dict[str, list[str]]] = {}
        stmt = select(codes_t.c.contact_id, codes_t.c.kind, codes_t.c.code).where(
            codes_t.c.contact_id.in_(select(vals.c.v))
        )
        for cid, kind, code in self._rows(stmt):
            if kind in kinds:
                joined.setdefault(kinds[kind], {}).setdefault(str(cid), []).append(str(code))
        answers = ProfileAnswer.__table__
        stmt = select(answers.c.contact_id, answers.c.questionnaire, answers.c.answer).where(
            answers.c.contact_id.in_(select(vals.c.v))
        )
        for cid, q, a in self._rows(stmt):
            joined.setdefault("profile", {}).setdefault(str(cid), []).append(f"{q}={a}")
        lists = {k: {c: ";".join(sorted(v)) for c, v in by.items()} for k, by in joined.items()}
        custom: dict[str, dict[str, Any]] = {}
        by_id = {s.custom_id: s for s in self.fields.custom if s.type != "list"}
        if by_id:
            cv = CustomValue.__table__
            stmt = select(cv.c.field_id, cv.c.contact_id, cv.c.num, cv.c.txt, cv.c.day).where(
                cv.c.contact_id.in_(select(vals.c.v))
            )
            for fid, cid, num, txt, day in self._rows(stmt):
                spec = by_id.get(fid)
                if spec is not None:
                    value = day if spec.type == "date" else txt if spec.type in ("code", "text") else num
                    custom.setdefault(spec.name, {})[str(cid)] = bool(value) if spec.type == "boolean" else value
        return rows, lists, custom

    def _numbers(self, stmt: Any) -> tuple[str, ...]:
        """The contact numbers a statement selects, through Arrow."""
        try:
            with quiet():
                table = self.run(stmt).toArrow()
        except Exception as exc:  # noqa: BLE001 - Spark's failure in one line
            raise SparkUnavailable(f"source {self.spec.name}: Spark failed: {_first_line(exc)}") from None
        return tuple(str(v) for v in table.column(0).to_pylist())

    def _flagged(
        self, frm: Any, flags: Mapping[str, sa.ColumnElement[bool]], dimensions: Sequence[str], today: dt.date
    ) -> dict[str, dict[str, Distribution]]:
        return self._flag_counts(frm, flags, dimensions, today)[1]

    def _flag_counts(
        self, frm: Any, flags: Mapping[str, sa.ColumnElement[bool]], dimensions: Sequence[str], today: dt.date
    ) -> tuple[dict[str, int], dict[str, dict[str, Distribution]]]:
        """Per flag, the distributions of the rows it marks, in two Spark jobs whatever the number of flags.

        The single-valued dimensions in ONE pass: each row's buckets, its flags (true or false) and, per list
        dimension, whether it has a code of that kind are grouped once (a few thousand groups, however many rows),
        and only those groups go through the GROUPING SETS (one set per dimension, the empty set for the totals):
        GROUPING SETS straight over the rows copied every row once per set and summed each flag on every copy.
        The list dimensions in one more: the rows joined to their codes, grouped by kind, code and flags (a
        contact has a code once: `contact_codes` is distinct); a contact with no code of a kind counts in
        "(none)", the flag's total less those with one."""
        names = list(flags)
        for d in dimensions:
            try:
                dimension_of(d, self.fields)
            except KeyError:
                raise UsageError(f"{d!r} is not a chart dimension") from None
        single = [d for d in dimensions if not dimension_of(d, self.fields).multi]
        multi = [d for d in dimensions if dimension_of(d, self.fields).multi]
        kinds = {self._code_kind(d): d for d in multi}
        counts: dict[str, dict[str, dict[str, int]]] = {n: {d: {} for d in dimensions} for n in names}
        totals = dict.fromkeys(names, 0)
        exprs = []
        joined_frm = frm
        for i, d in enumerate(single):
            spec = self.fields.get(d)
            if d in DIMENSIONS or spec is None or not spec.custom:
                exprs.append(_bucket_expr(d, today, self.fields))
                continue
            # A custom field's values: one outer join each (at most one value row per contact and field).
            cv = CustomValue.__table__.alias(f"cv{i}")
            joined_frm = joined_frm.outerjoin(
                cv, sa.and_(cv.c.field_id == spec.custom_id, cv.c.contact_id == contacts.c.id)
            )
            value = {"number": cv.c.num, "boolean": cv.c.num, "date": cv.c.day}.get(spec.type, cv.c.txt)
            exprs.append(_bucket_expr(d, today, self.fields, value=value))
        has = [
            _truth(contacts.c.id.in_(select(codes_t.c.contact_id).where(codes_t.c.kind == kind))) for kind in kinds
        ]
        marks = [_truth(flags[n]).label(f"f{j}") for j, n in enumerate(names)]
        keys = [e.label(f"b{i}") for i, e in enumerate(exprs)] + [h.label(f"h{k}") for k, h in enumerate(has)]
        rows = select(*keys, *marks).select_from(joined_frm).subquery("r")
        key_cols = [rows.c[k.name] for k in keys]
        mark_cols = [rows.c[m.name] for m in marks]
        groups = select(*key_cols, *mark_cols, func.count().label("n")).group_by(*key_cols, *mark_cols).subquery("g")
        sums = [func.coalesce(func.sum(sa.case((groups.c[m.name], groups.c.n), else_=0)), 0) for m in marks]
        gkeys = [groups.c[k.name] for k in keys]
        stmt = select(*gkeys, *sums)
        if gkeys:
            stmt = stmt.group_by(func.grouping_sets(*gkeys, sa.tuple_()))
        with_code: dict[str, dict[str, int]] = {n: {} for n in names}
        for row in self._rows(stmt):
            buckets, values = row[: len(keys)], row[len(keys) :]
            owner = next((i for i, b in enumerate(buckets) if b is not None), None)
            for k, n in enumerate(names):
                v = int(values[k])
                if owner is None:
                    totals[n] = v
                elif owner >= len(single):  # a list dimension: the rows with a code of its kind, or without
                    if buckets[owner]:
                        with_code[n][multi[owner - len(single)]] = v
                elif v:
                    counts[n][single[owner]][str(buckets[owner])] = v
        if multi:
            joined = frm.join(codes_t, codes_t.c.contact_id == contacts.c.id)
            coded = (
                select(codes_t.c.kind, codes_t.c.code, *marks)
                .select_from(joined)
                .where(codes_t.c.kind.in_(list(kinds)))
                .subquery("r")
            )
            mark_cols = [coded.c[m.name] for m in marks]
            stmt = select(coded.c.kind, coded.c.code, *mark_cols, func.count()).group_by(
                coded.c.kind, coded.c.code, *mark_cols
            )
            for kind, code, *rest in self._rows(stmt):
                d, n_rows = kinds[kind], int(rest[-1])
                for k, n in enumerate(names):
                    if rest[k]:
                        by_code = counts[n][d]
                        by_code[str(code)] = by_code.get(str(code), 0) + n_rows
            for n in names:
                for d in multi:
                    if totals[n] - with_code[n].get(d, 0):
                        counts[n][d][UNKNOWN] = totals[n] - with_code[n].get(d, 0)
        return totals, {
            n: {d: Distribution(d, _ordered(d, counts[n][d], self.fields), totals[n]) for d in dimensions}
            for n in names
        }

    def _code_kind(self, dimension: str) -> str:
        spec = self.fields.get(dimension)
        return spec.code_kind if spec is not None else dimension

    def _label(self, name: str) -> str:
        spec = self.fields.get(name)
        return CONTACT_TARGETS.get(name) or (spec.label if spec is not None else name)

    def describe(self) -> dict[str, Any]:
        """The source's definition and its mapped fields (reads no data)."""
        return {
            "name": self.spec.name,
            "spark": self.spec.spark_url,
            "contacts": self.spec.contacts.describe(),
            "interactions": self.spec.interactions.describe() if self.spec.interactions else None,
            "fields": {c.field: c.source for c in self.mapping.columns if c.field},
            "custom_fields": {f: t for _i, f, t, _s in self._custom_choices()},
            # How pages name each mapped field: its label, as filters' descriptions and charts do.
            "labels": {c.field: self._label(c.field) for c in self.mapping.columns if c.field},
            "interaction_labels": (
                {c.field: INTERACTION_TARGETS.get(c.field, c.field) for c in self.interactions_mapping.columns if c.field}
                if self.interactions_mapping
                else {}
            ),
            "interaction_fields": (
                {c.field: c.source for c in self.interactions_mapping.columns if c.field}
                if self.interactions_mapping
                else {}
            ),
        }


def _truth(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """A filter as a flag of each row: true where WHERE would keep the row, false elsewhere (never NULL, so that
    NOT and OR of flags mean what they say; in SELECT, Spark plans a related-record IN test as an existence join)."""
    return sa.case((condition, sa.true()), else_=sa.false())


def _org() -> sa.ColumnElement[Any]:
    """The company a contact is or belongs to: itself for a company, its company_no for a person (or none)."""
    return sa.case((contacts.c.type == "company", contacts.c.contact_no), else_=contacts.c.company_no)


_FOLD_READY: set[int] = set()


def _fold_ready(spark: SparkSession) -> None:
    """The fold tables' session variables, set once per Spark session."""
    if id(spark) not in _FOLD_READY:
        try:
            install_fold(spark)
        except Exception as exc:  # noqa: BLE001 - Spark's failure in one line
            raise SparkUnavailable(f"Spark refused the text-folding tables: {_first_line(exc)}") from None
        _FOLD_READY.add(id(spark))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def open_source(spec: SourceSpec) -> SparkSource:
    """Open a source: start (or reuse) its Spark session, read its schemas, check its mapping, register its views."""
    return SparkSource(spec, spark_session(spec.spark_url))
