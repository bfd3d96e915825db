"""The `dynamic` and `group` commands of the command line: dynamic segments and known user groups (SPEC §3)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ._db import Database
from ._dynamic import (
    DynamicInfo,
    count_history,
    create_dynamic,
    dynamic_count,
    freeze_dynamic,
    get_dynamic,
    list_dynamic,
    refresh_dynamic,
)
from ._errors import UsageError
from ._groups import (
    GroupChange,
    GroupInfo,
    add_emails,
    create_group,
    export_group_csv,
    get_group,
    group_addresses,
    list_groups,
    parse_email_csv,
)
from ._words import plural

__all__ = ["add_audience_commands"]

Output = tuple[str, Any]


def add_audience_commands(sub: Any) -> None:
    """Register `dynamic ...` and `group ...` on the top-level sub-parser collection."""
    from ._cli_segment import _read_filter  # the same --where / --filter reading as `segment add`

    dyn = sub.add_parser("dynamic", help="dynamic segments: saved filters evaluated against current data")
    ds = dyn.add_subparsers(dest="dynamic_command", required=True, metavar="COMMAND")
    p = ds.add_parser("create", help="save a filter as a dynamic segment")
    p.add_argument("no")
    p.add_argument("--where", action="append", default=[], metavar="F=EXPR", help="a condition; repeat to AND")
    p.add_argument("--filter", type=Path, metavar="FILE.json", help="a filter tree in JSON")
    p.add_argument("--date-order", type=str.upper, choices=("DMY", "MDY", "YMD"), metavar="DMY|MDY|YMD",
                   help="how short dates in --where are read (311225, 31/12/25); default: your date_order "
                   "preference, else DMY")
    p.add_argument("--description", default="")
    p.add_argument("--source", metavar="NAME", help="count the contacts of this source (see: source list)")
    # With the database: the user's date order, and "did you mean FR?" for a code value absent from the data.
    p.set_defaults(handler=lambda db, a: _dyn_create(db, a, _read_filter(a, db)))
    p = ds.add_parser("list", help="dynamic segments with their last recorded count")
    p.set_defaults(handler=_dyn_list)
    p = ds.add_parser("show", help="expression, count now against all contacts, count history")
    p.add_argument("no")
    p.set_defaults(handler=_dyn_show)
    p = ds.add_parser("refresh", help="count now and record it (for a scheduled job: --all)")
    p.add_argument("no", nargs="?")
    p.add_argument("--all", action="store_true", help="every dynamic segment")
    p.set_defaults(handler=_dyn_refresh)
    p = ds.add_parser("freeze", help="copy the current members into a new static segment")
    p.add_argument("no")
    p.add_argument("new_segment_no", metavar="NEW_SEGMENT_NO")
    p.add_argument("--description")
    p.add_argument("--campaign")
    p.set_defaults(handler=_dyn_freeze)

    grp = sub.add_parser("group", help="known user groups: e-mail lists matched to contacts")
    gs = grp.add_subparsers(dest="group_command", required=True, metavar="COMMAND")
    p = gs.add_parser("create", help="create a group, optionally with the addresses of a CSV or text file")
    p.add_argument("name")
    p.add_argument("--description", default="")
    p.add_argument("--file", type=Path, metavar="FILE.csv|.txt")
    p.set_defaults(handler=_group_create)
    p = gs.add_parser("add", help="add the addresses of a CSV or text file")
    p.add_argument("name")
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(handler=_group_add)
    p = gs.add_parser("show", help="counts and addresses (--unmatched: only those without a contact)")
    p.add_argument("name")
    p.add_argument("--unmatched", action="store_true")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=_group_show)
    p = gs.add_parser("export", help="write the group to CSV (formula-looking cells neutralised)")
    p.add_argument("name")
    p.add_argument("out", type=Path, metavar="FILE.csv")
    p.set_defaults(handler=_group_export)
    p = gs.add_parser("list", help="groups with their address and matched counts")
    p.set_defaults(handler=_group_list)


# ------------------------------------------------------------------------------------------------ dynamic


def _dyn_data(d: DynamicInfo) -> dict[str, Any]:
    return {
        "no": d.no, "description": d.description, "expression": d.expression, "owner": d.owner,
        "last_count": d.last_count, "last_total": d.last_total, "last_refreshed_at": d.last_refreshed_at,
        "source": d.source,
    }


def _dyn_create(db: Database, args: argparse.Namespace, node: Any) -> Output:
    info = create_dynamic(db, args.no, node, description=args.description, source=args.source)
    return f"created dynamic segment {info.no}: {info.expression.replace(chr(10), ' · ')}", _dyn_data(info)


def _dyn_list(db: Database, args: argparse.Namespace) -> Output:
    rows = list_dynamic(db)
    if not rows:
        return "no dynamic segments", []
    lines = [f"{'no':<30} {'last count':>10} {'of':>10}  expression"]
    for d in rows:
        count = f"{d.last_count:,}" if d.last_count is not None else "-"
        total = f"{d.last_total:,}" if d.last_total is not None else "-"
        lines.append(f"{d.no:<30} {count:>10} {total:>10}  {d.expression.replace(chr(10), ' · ')}")
    return "\n".join(lines), [_dyn_data(d) for d in rows]


def _dyn_show(db: Database, args: argparse.Namespace) -> Output:
    info = get_dynamic(db, args.no)
    count, total = dynamic_count(db, args.no)
    history = count_history(db, args.no)
    lines = [f"{info.no}: {info.description or 'no description'}", *("  " + x for x in info.expression.splitlines()),
             f"contacts in segment: {count:,} of {plural(total, 'contact')}"]
    lines += [f"  {p.at:%Y-%m-%d %H:%M}  {p.count:>10,} of {p.total:,}" for p in history]
    data = {**_dyn_data(info), "count": count, "total": total,
            "history": [{"at": p.at, "count": p.count, "total": p.total} for p in history]}
    return "\n".join(lines), data


def _dyn_refresh(db: Database, args: argparse.Namespace) -> Output:
    if args.all == bool(args.no):
        raise UsageError("give one dynamic segment number, or --all")
    nos = [d.no for d in list_dynamic(db)] if args.all else [args.no]
    points = {no: refresh_dynamic(db, no) for no in nos}
    lines = [f"{no}: {p.count:,} of {p.total:,}" for no, p in points.items()] or ["no dynamic segments"]
    return "\n".join(lines), {no: {"count": p.count, "total": p.total, "at": p.at} for no, p in points.items()}


def _dyn_freeze(db: Database, args: argparse.Namespace) -> Output:
    info = freeze_dynamic(db, args.no, args.new_segment_no, description=args.description, campaign_no=args.campaign)
    return (f"froze {args.no} into static segment {info.no}: {plural(info.size, 'member')}",
            {"segment_no": info.no, "size": info.size, "status": info.status})


# ------------------------------------------------------------------------------------------------ groups


def _group_data(g: GroupInfo) -> dict[str, Any]:
    return {"name": g.name, "description": g.description, "addresses": g.address_count,
            "matched": g.matched_count, "unmatched": g.unmatched_count}


def _read_addresses(path: Path) -> tuple[str, ...]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_email_csv(data)


def _change(g: GroupInfo, c: GroupChange) -> Output:
    text = (f"{g.name}: {c.added:,} added, {c.already_there:,} already there, {len(c.invalid):,} not an address; "
            f"{g.matched_count:,} of {g.address_count:,} match a contact")
    return text, {**_group_data(g), "added": c.added, "already_there": c.already_there, "invalid": list(c.invalid)}


def _group_create(db: Database, args: argparse.Namespace) -> Output:
    emails = _read_addresses(args.file) if args.file else ()
    info, change = create_group(db, args.name, description=args.description, emails=emails)
    return _change(info, change)


def _group_add(db: Database, args: argparse.Namespace) -> Output:
    change = add_emails(db, args.name, _read_addresses(args.file))
    return _change(get_group(db, args.name), change)


def _group_show(db: Database, args: argparse.Namespace) -> Output:
    info = get_group(db, args.name)
    rows, total = group_addresses(db, args.name, status="unmatched" if args.unmatched else "all", limit=args.limit)
    lines = [f"{info.name}: {plural(info.address_count, 'address', 'addresses')}, {info.matched_count:,} matched, "
             f"{info.unmatched_count:,} unmatched"]
    lines += [f"  {r['email']:<50} {r['contact_no'] or '-'}" for r in rows]
    if total > len(rows):
        lines.append(f"  … {total - len(rows):,} more")
    return "\n".join(lines), {**_group_data(info), "addresses_shown": rows, "addresses_total": total}


def _group_export(db: Database, args: argparse.Namespace) -> Output:
    data = export_group_csv(db, args.name)
    try:
        args.out.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror}") from exc
    return f"wrote {args.out} ({len(data):,} bytes)", {"file": str(args.out), "bytes": len(data)}


def _group_list(db: Database, args: argparse.Namespace) -> Output:
    rows = list_groups(db)
    if not rows:
        return "no known user groups", []
    lines = [f"{'name':<40} {'addresses':>10} {'matched':>10} {'unmatched':>10}"]
    lines += [f"{g.name:<40} {g.address_count:>10,} {g.matched_count:>10,} {g.unmatched_count:>10,}" for g in rows]
    return "\n".join(lines), [_group_data(g) for g in rows]
