"""The `segment` and `criteria` commands of the command line (SPEC §4)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._db import Database
from ._engine import (
    ActionOptions,
    ActionRequest,
    ActionResult,
    apply_action,
    create_segment,
    criteria_log,
    get_segment,
    member_contact_nos,
    redo,
    reuse_criteria,
    save_criteria,
    split_emails,
    undo,
)
from ._errors import UsageError
from ._filter_text import parse_text
from ._filter_tree import Group, Node, from_json
from ._preview import preview_step

__all__ = ["add_segment_commands"]

Output = tuple[str, Any]  # (plain text, JSON-able data)


def add_segment_commands(sub: Any) -> None:
    """Register `segment ...` and `criteria ...` on the top-level sub-parser collection."""
    seg = sub.add_parser("segment", help="create and change static segments")
    ss = seg.add_subparsers(dest="segment_command", required=True, metavar="COMMAND")

    p = ss.add_parser("create", help="create an empty segment")
    p.add_argument("no")
    p.add_argument("--description", required=True)
    p.add_argument("--campaign")
    p.set_defaults(handler=_create)

    for kind in ("add", "refine", "reduce"):
        p = ss.add_parser(kind, help=f"{kind} members with a filter")
        p.add_argument("no")
        p.add_argument("--where", action="append", default=[], metavar="F=EXPR", help="a condition; repeat to AND")
        p.add_argument("--filter", type=Path, metavar="FILE.json", help="a filter tree in JSON")
        if kind == "add":
            p.add_argument("--expand-companies", action="store_true")
            p.add_argument("--related-companies", action="store_true")
            p.add_argument("--ignore-exclusion", action="store_true")
        else:
            p.add_argument("--entire-companies", action="store_true")
        p.add_argument("--preview", action="store_true", help="show what would change; write nothing")
        p.set_defaults(handler=_filter_action, kind=kind)

    for name, kind in (("add-contacts", "add_contacts"), ("remove-contacts", "remove_contacts")):
        p = ss.add_parser(name, help=f"{name.replace('-', ' ')} by number")
        p.add_argument("no")
        p.add_argument("contact_nos", nargs="+", metavar="CONTACT_NO")
        p.add_argument("--preview", action="store_true")
        p.set_defaults(handler=_named_action, kind=kind)

    p = ss.add_parser("add-emails", help="add the contacts whose e-mail is in FILE")
    p.add_argument("no")
    p.add_argument("file", type=Path)
    p.add_argument("--ignore-exclusion", action="store_true")
    p.add_argument("--preview", action="store_true")
    p.set_defaults(handler=_emails_action)

    for name, fn in (("undo", undo), ("redo", redo)):
        p = ss.add_parser(name, help=f"{name} the last step")
        p.add_argument("no")
        p.set_defaults(handler=_undo_redo, fn=fn, verb=name)

    p = ss.add_parser("show", help="header, size and criteria log")
    p.add_argument("no")
    p.set_defaults(handler=_show)

    p = ss.add_parser("members", help="member contact numbers, one a line, sorted")
    p.add_argument("no")
    p.set_defaults(handler=_members)

    crit = sub.add_parser("criteria", help="save and reuse a segment's steps")
    cs = crit.add_subparsers(dest="criteria_command", required=True, metavar="COMMAND")
    p = cs.add_parser("save", help="save segment NO's applied steps under CODE")
    p.add_argument("no")
    p.add_argument("code")
    p.add_argument("--description", default="")
    p.set_defaults(handler=_criteria_save)
    p = cs.add_parser("reuse", help="replay saved CODE on segment NO, each step undoable")
    p.add_argument("code")
    p.add_argument("no")
    p.set_defaults(handler=_criteria_reuse)


# ------------------------------------------------------------------------------------------------ handlers


def _create(db: Database, args: argparse.Namespace) -> Output:
    info = create_segment(db, args.no, description=args.description, campaign_no=args.campaign)
    return f"created segment {info.no}", {"segment": info.no, "status": info.status, "size": info.size}


def _read_filter(args: argparse.Namespace) -> Node:
    parts: list[Node] = []
    if args.filter is not None:
        try:
            raw = args.filter.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {args.filter}: {exc.strerror}") from exc
        try:
            parts.append(from_json(json.loads(raw)))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{args.filter}: not JSON (line {exc.lineno}, column {exc.colno})") from exc
    if args.where:
        parts.append(parse_text(args.where))
    if not parts:
        raise UsageError("give the filter with --where F=EXPR (repeatable) or --filter FILE.json")
    return parts[0] if len(parts) == 1 else Group("all", tuple(parts))


def _options(args: argparse.Namespace) -> ActionOptions:
    return ActionOptions(
        expand_companies=getattr(args, "expand_companies", False),
        related_companies=getattr(args, "related_companies", False),
        ignore_exclusion=getattr(args, "ignore_exclusion", False),
        entire_companies=getattr(args, "entire_companies", False),
    )


def _run(db: Database, args: argparse.Namespace, request: ActionRequest) -> Output:
    if args.preview:
        pv = preview_step(db, args.no, request, dimensions=()).counts
        data = {
            "segment": args.no, "kind": request.kind, "preview": True, "size_before": pv.size_before,
            "size_after": pv.size_after, "matched": pv.matched, "added": pv.added, "removed": pv.removed,
            "unmatched": list(pv.unmatched),
        }
        text = (
            f"preview {request.kind} on {args.no}: {pv.size_before:,} -> {pv.size_after:,} "
            f"(+{pv.added:,} / -{pv.removed:,}; {pv.matched:,} matched)"
        )
        return text + _unmatched_text(pv.unmatched), data
    result = apply_action(db, args.no, request)
    return _result_text(result, request.kind), _result_data(result)


def _result_data(r: ActionResult) -> dict[str, Any]:
    return {
        "segment": r.segment_no, "seq": r.seq, "kind": r.kind, "matched": r.matched, "added": r.added,
        "removed": r.removed, "size_after": r.size_after, "unmatched": list(r.unmatched),
    }


def _result_text(r: ActionResult, verb: str) -> str:
    text = (
        f"{verb} on {r.segment_no}: step {r.seq}, +{r.added:,} / -{r.removed:,}, "
        f"{r.size_after:,} members"
    )
    return text + _unmatched_text(r.unmatched)


def _unmatched_text(unmatched: tuple[str, ...]) -> str:
    if not unmatched:
        return ""
    shown = "\n".join(f"  not found: {e}" for e in unmatched[:50])
    more = f"\n  … and {len(unmatched) - 50:,} more" if len(unmatched) > 50 else ""
    return f"\n{len(unmatched):,} address(es) matched no contact:\n{shown}{more}"


def _filter_action(db: Database, args: argparse.Namespace) -> Output:
    return _run(db, args, ActionRequest(args.kind, _read_filter(args), _options(args)))


def _named_action(db: Database, args: argparse.Namespace) -> Output:
    return _run(db, args, ActionRequest(args.kind, contact_nos=tuple(args.contact_nos)))


def _emails_action(db: Database, args: argparse.Namespace) -> Output:
    try:
        text = args.file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        text = args.file.read_text(encoding="cp1252")
    emails = split_emails(text)
    if not emails:
        raise UsageError(f"{args.file} holds no e-mail address")
    return _run(db, args, ActionRequest("add_emails", emails=emails, options=_options(args)))


def _undo_redo(db: Database, args: argparse.Namespace) -> Output:
    result = args.fn(db, args.no)
    verb = "undid" if args.verb == "undo" else "redid"
    text = f"{verb} step {result.seq} ({result.kind}) on {args.no}: {result.size_after:,} members"
    return text, _result_data(result)


def _show(db: Database, args: argparse.Namespace) -> Output:
    info = get_segment(db, args.no)
    log = criteria_log(db, args.no)
    lines = [
        f"segment {info.no}: {info.description}",
        f"  campaign {info.campaign_no or '-'} · owner {info.owner or '-'} · status {info.status} · "
        f"{info.size:,} members · created {info.created_at:%Y-%m-%d %H:%M}",
    ]
    if log:
        lines.append("  step  action           matched     added   removed      size  description")
    for e in log:
        mark = " (undone)" if e.undone else ""
        lines.append(
            f"  {e.seq:>4}  {e.label:<15} {e.matched:>8,} {e.added:>9,} {e.removed:>9,} {e.size_after:>9,}"
            f"  {e.description}{mark}"
        )
    data = {
        "segment": info.no, "description": info.description, "campaign": info.campaign_no, "owner": info.owner,
        "status": info.status, "size": info.size, "version": info.version,
        "created_at": info.created_at.isoformat(), "updated_at": info.updated_at.isoformat(),
        "log": [
            {
                "seq": e.seq, "kind": e.kind, "description": e.description, "filter": e.filter_json,
                "options": e.options, "matched": e.matched, "added": e.added, "removed": e.removed,
                "size_after": e.size_after, "user": e.user, "at": e.created_at.isoformat(), "undone": e.undone,
            }
            for e in log
        ],
    }
    return "\n".join(lines), data


def _members(db: Database, args: argparse.Namespace) -> Output:
    nos = member_contact_nos(db, args.no)
    return "\n".join(nos), nos


def _criteria_save(db: Database, args: argparse.Namespace) -> Output:
    n = save_criteria(db, args.no, args.code, description=args.description)
    code = args.code.strip().upper()
    return f"saved {n} step(s) of {args.no} as criteria {code}", {"code": code, "steps": n}


def _criteria_reuse(db: Database, args: argparse.Namespace) -> Output:
    results = reuse_criteria(db, args.code, args.no)
    lines = [_result_text(r, r.kind) for r in results]
    return "\n".join(lines), [_result_data(r) for r in results]
