"""CLI commands for the user's own data: `import contacts|interactions|outcomes`, `fields` (custom fields) and
`mappings`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ._db import Database
from ._errors import UsageError
from ._words import plural
from .fields.custom import (
    CUSTOM_TYPES,
    delete_custom_field,
    list_custom_fields,
    rename_custom_field,
    retype_custom_field,
)
from .imports import (
    DATE_ORDERS,
    ImportPlan,
    ImportReport,
    Progress,
    delete_mapping,
    list_mappings,
    save_mapping,
)
from .imports.pipeline import plan_import, run_import

__all__ = ["add_import_commands", "import_text", "progress_printer"]

# Imports of fewer rows finish before a progress line would help.
PROGRESS_MIN_ROWS = 50_000

Output = tuple[str, Any]
TEXT_ERROR_LINES = 20


def _pair(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"'{text}' is not \"Source column=field\"")
    source, _, field = text.rpartition("=")
    if not source.strip():
        raise argparse.ArgumentTypeError(f"'{text}' names no source column before '='")
    return source.strip(), field.strip()


def add_import_commands(sub: Any, parser_class: type[argparse.ArgumentParser], existing_file: Any) -> None:
    """Register `import contacts|interactions|outcomes FILE ...`, `fields ...` and `mappings ...`."""
    imp = sub.add_parser("import", help="import contacts, interactions or outcomes from a CSV or Excel file")
    isub = imp.add_subparsers(dest="import_command", metavar="WHAT", required=True, parser_class=parser_class)
    for what, doc in (
        ("contacts", "import or update contacts (a contact already stored is updated, in the mapped columns only)"),
        ("interactions", "add interactions to the log (every contact number must exist)"),
        ("outcomes", "add outcomes: orders, sign-ups, replies ... (every contact number must exist; a kind and "
         "reference stored already is updated, so an order counts once)"),
    ):
        p = isub.add_parser(
            what,
            help=doc,
            description=f"{doc[0].upper()}{doc[1:]}. CSV (',' ';' tab or '|' separated; UTF-8, UTF-16 or "
            "Windows-1252, detected) or Excel .xlsx. Columns are mapped to fields from their header (English, "
            "French and German synonyms), and the mapping used is printed; other columns become custom fields "
            "(--new-fields skip leaves them out). Without --strict the valid rows are imported and every rejected "
            "row is reported with its line and column; with --strict nothing is imported when any row is wrong. "
            "Exit status 1 when nothing was imported because of errors.",
        )
        p.add_argument("file", type=existing_file, metavar="FILE", help="the CSV or .xlsx file")
        p.add_argument("--mapping", metavar="MAP.json", help="a mapping file (as --save-mapping or --json write it, "
                       'or {"columns": {"Source column": "field"}})')
        p.add_argument("--map", action="append", type=_pair, default=[], metavar='"Source column=field"',
                       help="map one column (field '' skips it); repeatable")
        p.add_argument("--date-format", choices=DATE_ORDERS, type=lambda v: v if v == "auto" else v.upper(),
                       default="auto", help="the day/month order of dates like 03/04/2021 (asked for when "
                       "a column is ambiguous; never guessed)")
        p.add_argument("--sheet", metavar="SHEET", help="the Excel sheet (name or 1-based number; default the first)")
        p.add_argument("--dry-run", action="store_true", help="check and print the mapping and report; write nothing")
        p.add_argument("--strict", action="store_true", help="import nothing when any row is wrong")
        p.add_argument("--save-mapping", metavar="NAME", help="keep the mapping used under NAME: a file with the "
                       "same header gets it again")
        if what == "contacts":
            p.add_argument("--new-fields", choices=("auto", "skip"), default="auto",
                           help="columns that match no field: new custom fields (auto) or left out (skip)")
            p.add_argument("--key", metavar="COLUMN", help="the column that identifies a contact (its number, or "
                           "an e-mail column: the e-mail is then the key)")
            p.add_argument("--empty", choices=("keep", "clears"), default="keep",
                           help="an empty cell keeps the stored value (keep, default) or clears it (clears)")
        p.set_defaults(handler=_import, what=what)

    f = sub.add_parser("fields", help="custom fields: list, rename, retype, delete",
                       description="Custom fields are made by imports; a field in use by saved criteria or a "
                       "dynamic segment cannot be deleted (or retyped to other operators).")
    fsub = f.add_subparsers(dest="fields_command", metavar="COMMAND", parser_class=parser_class)
    f.set_defaults(handler=_fields_list)
    fsub.add_parser("list", help="every custom field with its type and use").set_defaults(handler=_fields_list)
    p = fsub.add_parser("rename", help="rename a custom field (saved filters follow) or change its label")
    p.add_argument("name")
    p.add_argument("new_name", nargs="?")
    p.add_argument("--label")
    p.set_defaults(handler=_fields_rename)
    p = fsub.add_parser("retype", help="change a custom field's type when every value allows")
    p.add_argument("name")
    p.add_argument("type", choices=CUSTOM_TYPES)
    p.add_argument("--date-format", choices=DATE_ORDERS, type=lambda v: v if v == "auto" else v.upper(),
                   default="auto")
    p.set_defaults(handler=_fields_retype)
    p = fsub.add_parser("delete", help="delete a custom field and its values")
    p.add_argument("name")
    p.set_defaults(handler=_fields_delete)

    m = sub.add_parser("mappings", help="saved import mappings: list, delete")
    msub = m.add_subparsers(dest="mappings_command", metavar="COMMAND", parser_class=parser_class)
    m.set_defaults(handler=_mappings_list)
    msub.add_parser("list", help="the saved mappings").set_defaults(handler=_mappings_list)
    p = msub.add_parser("delete", help="forget a saved mapping")
    p.add_argument("name")
    p.set_defaults(handler=_mappings_delete)


def _sheet(value: str | None) -> str | int | None:
    if value is None:
        return None
    return int(value) - 1 if value.isdigit() else value


def _import(db: Database, args: argparse.Namespace) -> Output:

    overrides = dict(args.map)
    plan = plan_import(
        db, Path(args.file), args.what, mapping=args.mapping, overrides=overrides,
        new_fields=getattr(args, "new_fields", "skip"), date_format=args.date_format,
        key=getattr(args, "key", None), sheet=_sheet(args.sheet),
    )
    progress: Progress = progress_printer(args.what)
    report = run_import(db, plan, strict=args.strict, empty_clears=getattr(args, "empty", "keep") == "clears",
                        dry_run=args.dry_run, progress=progress)
    if args.save_mapping and not args.dry_run:
        save_mapping(db, args.save_mapping, plan.mapping)
    return import_text(plan, report), import_json(plan, report)


def import_json(plan: ImportPlan, report: ImportReport) -> dict[str, Any]:
    """The report with the mapping used (a file --mapping takes back) and the new fields with their types."""
    data = report.as_dict()
    data["mapping_used"] = plan.mapping.to_json()
    data["saved_mapping"] = plan.saved_mapping or None
    data["fields"] = [
        {"name": c.field, "source": c.source, "type": c.type, "how": c.how, "rule": c.rule, "problems": c.problems,
         "samples": list(c.samples)}
        for c in plan.columns if c.field
    ]
    return data


def import_text(plan: ImportPlan, report: ImportReport, *, limit: int = TEXT_ERROR_LINES) -> str:
    """The report for a person: summary, how the file was read and mapped, then the rejected rows (capped)."""
    lines = [report.summary()]
    lines.append(f"read: {plan.raw.describe()}" + (f" (saved mapping '{plan.saved_mapping}')" if plan.saved_mapping
                                                    else ""))
    lines.append("mapping:")
    lines += [f"  {line}" for line in plan.mapping.describe()]
    if report.rules:
        lines.append("values:")
        lines += [f"  {rule}" for rule in report.rules]
    if report.errors:
        lines.append("rejected rows:")
    lines += [f"  {e.message}" for e in report.errors[:limit]]
    more = report.errors_total - min(limit, len(report.errors))
    if more > 0:
        lines.append(f"  ... and {plural(more, 'more problem')} (the JSON report lists the first {len(report.errors):,})")
    return "\n".join(lines)


def _fields_list(db: Database, args: argparse.Namespace) -> Output:
    infos = list_custom_fields(db)
    if not infos:
        return "no custom fields: an import makes them from columns that match no built-in field", []
    lines = [f"{i.name}  {i.type}  '{i.label}'  {plural(i.contacts, 'contact')}"
             + (f"  used by {', '.join(i.used_by)}" if i.used_by else "") for i in infos]
    data = [{"name": i.name, "label": i.label, "type": i.type, "integer": i.integer, "contacts": i.contacts,
             "used_by": list(i.used_by)} for i in infos]
    return "\n".join(lines), data


def _fields_rename(db: Database, args: argparse.Namespace) -> Output:
    if args.new_name is None and args.label is None:
        raise UsageError("give a new name, --label, or both")
    rename_custom_field(db, args.name, args.new_name, label=args.label)
    name = args.new_name or args.name
    return f"custom field {args.name} is now {name}" + (f" ('{args.label}')" if args.label else ""), {"name": name}


def _fields_retype(db: Database, args: argparse.Namespace) -> Output:
    moved = retype_custom_field(db, args.name, args.type, date_order=args.date_format)
    return f"custom field {args.name} is now {args.type} ({plural(moved, 'value')} converted)", {"converted": moved}


def _fields_delete(db: Database, args: argparse.Namespace) -> Output:
    delete_custom_field(db, args.name)
    return f"custom field {args.name} deleted", {"deleted": args.name}


def _mappings_list(db: Database, args: argparse.Namespace) -> Output:
    rows = list_mappings(db)
    if not rows:
        return "no saved mappings (import with --save-mapping NAME to keep one)", []
    lines = [f"{r['name']}  {r['kind']}  {plural(len(r['mapping'].get('columns', [])), 'column')}" for r in rows]
    return "\n".join(lines), [{"name": r["name"], "kind": r["kind"], "mapping": r["mapping"]} for r in rows]


def _mappings_delete(db: Database, args: argparse.Namespace) -> Output:
    delete_mapping(db, args.name)
    return f"mapping {args.name} deleted", {"deleted": args.name}


def progress_printer(label: str, stream: TextIO | None = None) -> Progress:
    """A progress callback printing one line per stage and tenth on standard error, for long jobs only."""
    shown: dict[str, int] = {}

    def progress(done: int, total: int, stage: str) -> None:
        if total < PROGRESS_MIN_ROWS:
            return
        tenth = min(10, done * 10 // total) if total else 10
        if shown.get(stage, -1) >= tenth:
            return
        shown[stage] = tenth
        out = stream or sys.stderr
        print(f"{label}: {stage} {tenth * 10}% ({done:,} of {total:,})", file=out, flush=True)

    return progress
