"""Warehouse mode: contacts that stay in Apache Spark (a table or a Parquet/CSV location), read where they lie.

    open_source(spec)       a SparkSource: count, matched_ids, matched_ids_many, matched_set, step_scan
                            (with StepOptions), distributions, member_distributions, step_distributions,
                            row_count (each pushed down to Spark; small results come back through Arrow)
    add_source / remove_source / list_sources / get_source     the `sources` table (admin, audited)
    spark_session(url)      one session per URL: local[N] or a Spark Connect address sc://host:port
    SparkDialect            the SQLAlchemy dialect the filter compiler writes Spark SQL with (named parameters)

No Streamlit here, and pyspark is imported only when a session starts. docs/spark.md describes the design.
"""

from __future__ import annotations

from .catalog import (
    SourceInfo,
    add_source,
    check_name,
    fields_for,
    get_source,
    list_sources,
    load_fields_for,
    open_stored_source,
    read_mappings,
    remove_source,
    segments_using,
    source_info,
    sources_in_use,
)
from .dialect import FOLD_LIMITS, SparkDialect
from .errors import SourceConfigError, SourceInUse, SourceNotFound, SparkUnavailable
from .session import SparkUrl, parse_spark_url, spark_session, stop_sessions
from .source import (
    FORMATS,
    STEP_KINDS,
    Location,
    SourceCount,
    SourceSpec,
    SparkSource,
    StepChanges,
    StepOptions,
    StepPass,
    StepScan,
    open_source,
)

__all__ = [
    "FOLD_LIMITS",
    "FORMATS",
    "STEP_KINDS",
    "Location",
    "SourceConfigError",
    "SourceCount",
    "SourceInUse",
    "SourceInfo",
    "SourceNotFound",
    "SourceSpec",
    "SparkDialect",
    "SparkSource",
    "SparkUnavailable",
    "SparkUrl",
    "StepChanges",
    "StepOptions",
    "StepPass",
    "StepScan",
    "add_source",
    "check_name",
    "fields_for",
    "get_source",
    "list_sources",
    "load_fields_for",
    "open_source",
    "open_stored_source",
    "parse_spark_url",
    "remove_source",
    "read_mappings",
    "segments_using",
    "source_info",
    "sources_in_use",
    "spark_session",
    "stop_sessions",
]
