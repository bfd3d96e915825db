"""`source add|list|show|remove`: contact sources that stay in Spark (a table or a Parquet/CSV location).

`source add` checks the source in Spark (its schema, the mapped columns and their types) before anything is written;
a bad configuration is one line on standard error and changes nothing. Spark itself is imported only by the
commands that need it, so every other command starts as fast as before.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._db import Database
from ._errors import UsageError
from ._words import plural

__all__ = ["add_source_commands"]

Output = tuple[str, Any]  # (plain text, JSON-able data)


def add_source_commands(sub: Any) -> None:
    """Register `source ...` on the top-level sub-parser collection."""
    src = sub.add_parser(
        "source",
        help="contact sources that stay in Spark (warehouse mode)",
        description="Contacts that stay where they are: a Spark table or a Parquet/CSV location, read through a "
        "local Spark (local[N]) or a Spark Connect server (sc://host:port). See docs/spark.md.",
    )
    ss = src.add_subparsers(dest="source_command", required=True, metavar="COMMAND")

    p = ss.add_parser("add", help="check a source in Spark and store it (administrators)")
    p.add_argument("name")
    p.add_argument("--spark", required=True, metavar="URL", help="local[N] or a Spark Connect address sc://host:port")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--table", metavar="T", help="a table Spark knows (catalog.schema.table)")
    where.add_argument("--path", metavar="PATH", help="a Parquet or CSV file or folder (or an s3a://, abfss:// ... URI)")
    p.add_argument("--format", choices=("parquet", "csv"), help="how --path is read (default parquet)")
    inter = p.add_mutually_exclusive_group()
    inter.add_argument("--interactions-table", metavar="T2", help="the interactions, as a Spark table")
    inter.add_argument("--interactions-path", metavar="P2", help="the interactions, as a Parquet or CSV location")
    p.add_argument(
        "--mapping", metavar="MAP.json", type=Path,
        help="the column mapping, as for a file import (a contacts mapping, or {\"contacts\": ..., "
        "\"interactions\": ...}); default: suggested from the column names",
    )  # fmt: skip
    p.set_defaults(handler=_add)

    ss.add_parser("list", help="the stored sources").set_defaults(handler=_list)

    p = ss.add_parser("show", help="a source's definition, its row count and its mapped fields")
    p.add_argument("name")
    p.set_defaults(handler=_show)

    p = ss.add_parser("remove", help="forget a source (refused while a segment uses it; administrators)")
    p.add_argument("name")
    p.set_defaults(handler=_remove)


def _read_mapping(path: Path | None) -> tuple[Any, Any]:
    from .spark.catalog import read_mappings

    if path is None:
        return None, None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"mapping file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not a JSON mapping: {exc}") from None
    return read_mappings(text, str(path))


def _add(db: Database, args: argparse.Namespace) -> Output:
    from .spark.catalog import add_source
    from .spark.source import Location, SourceSpec

    if args.format and not args.path:
        raise UsageError("--format goes with --path (a table has its own format)")
    fmt = args.format or "parquet"
    contacts = Location("table", args.table) if args.table else Location("path", args.path, fmt)
    if args.interactions_table:
        inter: Location | None = Location("table", args.interactions_table)
    elif args.interactions_path:
        inter = Location("path", args.interactions_path, fmt)
    else:
        inter = None
    mapping, imapping = _read_mapping(args.mapping)
    spec = SourceSpec(args.name.strip(), args.spark.strip(), contacts, mapping, inter, imapping)
    source = add_source(db, spec)
    info = source.describe()
    n = len(info["fields"])
    return f"added source {spec.name}: {contacts.describe()}, {plural(n, 'mapped field')}", info


def _list(db: Database, args: argparse.Namespace) -> Output:
    from .spark.catalog import list_sources

    rows = list_sources(db)
    if not rows:
        return "no sources (add one with: source add NAME --spark URL --table T)", []
    lines = [
        f"{r.name}  {r.contacts.describe()}  on {r.spark_url}"
        + (f"  + interactions {r.interactions.describe()}" if r.interactions else "")
        for r in rows
    ]
    return "\n".join(lines), [r.to_json() for r in rows]


def _show(db: Database, args: argparse.Namespace) -> Output:
    from .spark.catalog import get_source, segments_using
    from .spark.source import open_source

    info = get_source(db, args.name)
    source = open_source(info.spec())
    rows = source.row_count()
    with db.read() as conn:
        using = segments_using(conn, info.name)
    described = source.describe()
    data = {**info.to_json(), "rows": rows, "fields": described["fields"], "custom_fields": described["custom_fields"],
            "interaction_fields": described["interaction_fields"], "segments": using}  # fmt: skip
    lines = [
        f"source {info.name}: {info.contacts.describe()} on {info.spark_url}",
        f"{plural(rows, 'contact')}",
        "fields: " + ", ".join(f"{f} ← {c}" for f, c in described["fields"].items()),
    ]
    if described["interaction_fields"]:
        lines.append("interaction fields: " + ", ".join(f"{f} ← {c}" for f, c in described["interaction_fields"].items()))
    lines.append("segments: " + (", ".join(using) if using else "none"))
    return "\n".join(lines), data


def _remove(db: Database, args: argparse.Namespace) -> Output:
    from .spark.catalog import remove_source

    remove_source(db, args.name)
    return f"removed source {args.name}", {"removed": args.name}
