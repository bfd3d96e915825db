"""The `segment`, `criteria` and `campaign` commands of the command line (SPEC §4)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import tempfile
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
    current_user,
    get_segment,
    member_contact_nos,
    redo,
    reuse_criteria,
    save_criteria,
    split_emails,
    undo,
    update_segment,
)
from ._errors import RefusedError, UsageError
from ._export import EXPORT_GROUP_LABELS, EXPORT_GROUPS, FORMATS, export_members, export_scope
from ._filter_check import known_values
from ._filter_text import parse_text
from ._filter_tree import Group, Node, from_json
from ._lifecycle import (
    CAMPAIGN_STATUSES,
    CampaignInfo,
    LoggedInfo,
    approve_segment,
    cancel_logged,
    create_campaign,
    get_logged,
    list_campaigns,
    log_segment,
    reject_segment,
    segment_is_small,
    status_history,
    submit_segment,
    update_campaign,
    withdraw_segment,
)
from ._preferences import PREFERENCES, get_preference
from ._preview import preview_step
from ._words import plural
from .results.cli import add_campaign_results_command, add_results_command
from .spark.catalog import fields_for

__all__ = ["add_segment_commands"]

Output = tuple[str, Any]  # (plain text, JSON-able data)
DATE_ORDER_CHOICES = PREFERENCES["date_order"].values


def add_segment_commands(sub: Any) -> None:
    """Register `segment ...` and `criteria ...` on the top-level sub-parser collection."""
    seg = sub.add_parser("segment", help="create and change static segments")
    ss = seg.add_subparsers(dest="segment_command", required=True, metavar="COMMAND")

    p = ss.add_parser("create", help="create an empty segment")
    p.add_argument("no")
    p.add_argument("--description", required=True)
    p.add_argument("--campaign")
    p.add_argument("--source", metavar="NAME", help="the contact source its members come from (see: source list); "
                   "default: the contacts of this database")
    p.set_defaults(handler=_create)

    p = ss.add_parser("update", help="change a segment's description or campaign ('' removes the campaign)",
                      description="Change a segment's description or campaign. A submitted, approved or rejected "
                      "segment goes back to draft when either really changes.")
    p.add_argument("no")
    p.add_argument("--description")
    p.add_argument("--campaign")
    p.set_defaults(handler=_update)

    for kind in ("add", "refine", "reduce"):
        p = ss.add_parser(kind, help=f"{kind} members with a filter")
        p.add_argument("no")
        p.add_argument("--where", action="append", default=[], metavar="F=EXPR", help="a condition; repeat to AND")
        p.add_argument("--filter", type=Path, metavar="FILE.json", help="a filter tree in JSON")
        p.add_argument("--date-order", type=str.upper, choices=DATE_ORDER_CHOICES, metavar="DMY|MDY|YMD",
                       help="how short dates in --where are read (311225, 31/12/25); default: your date_order "
                       "preference, else DMY")
        if kind == "add":
            who = p.add_mutually_exclusive_group()
            who.add_argument("--persons-only", action="store_const", const="person", dest="contact_type",
                             help="match persons only (before the company options apply)")
            who.add_argument("--companies-only", action="store_const", const="company", dest="contact_type",
                             help="match companies only (before the company options apply)")
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

    p = ss.add_parser(
        "export",
        help="write the members with their contact fields to FILE.csv or FILE.xlsx",
        description="Write the members with their contact fields; the format follows the file extension. A cell "
        "a spreadsheet would run as a formula is neutralised. A small or empty segment is refused (exit 1) and "
        "no file is left behind. A logged segment exports its contacted (treated) members unless --group says "
        "otherwise, so the control group is never mailed by accident.",
    )
    p.add_argument("no")
    p.add_argument("file", type=Path, metavar="FILE.csv|FILE.xlsx")
    p.add_argument(
        "--group", type=str.lower, choices=EXPORT_GROUPS, metavar="treated|control|all",
        help="for a logged segment: " + "; ".join(f"{g}: {EXPORT_GROUP_LABELS[g]}" for g in EXPORT_GROUPS)
        + " (default treated; a segment that is not logged has no groups)",
    )
    p.set_defaults(handler=_export)

    p = ss.add_parser(
        "log",
        help="log the segment: one interaction per member, the segment becomes read-only",
        description="Write one interaction per member (template, date, campaign, segment number, user), keep an "
        "immutable logged snapshot and make the segment read-only. With --holdout PCT, a random share of the "
        "members is kept out of the interactions as the control group; --seed S repeats a draw (without it a "
        "seed is drawn and printed). With --follow-up, a new draft segment gets the contacted members (the control "
        "group left out) and the campaign.",
    )
    p.add_argument("no")
    p.add_argument("--template", required=True, metavar="CODE", help="interaction template, e.g. EMAIL")
    p.add_argument("--date", type=_date, metavar="YYYY-MM-DD", help="interaction date (default today)")
    p.add_argument("--follow-up", action="store_true",
                   help="create a follow-up segment with the contacted members (control group left out)")
    p.add_argument("--follow-up-no", metavar="NO", help="number of the follow-up segment (default NO-FU)")
    p.add_argument("--holdout", type=_percent, metavar="PCT", help="percentage of members kept out (control group)")
    p.add_argument("--seed", type=_whole, metavar="S", help="seed of the holdout draw (needs --holdout)")
    p.set_defaults(handler=_log)

    p = ss.add_parser("cancel-log", help="cancel a logged segment: its interactions are marked cancelled")
    p.add_argument("no")
    p.set_defaults(handler=_cancel_log)

    for name, doc in (
        ("submit", "send the segment for review"),
        ("withdraw", "take the segment back to draft"),
        ("approve", "approve a submitted segment"),
        ("reject", "reject a submitted segment, saying why"),
    ):
        p = ss.add_parser(name, help=doc)
        p.add_argument("no")
        p.add_argument("--comment", required=name == "reject", metavar="TEXT")
        p.set_defaults(handler=_transition, verb=name)

    p = ss.add_parser("history", help="who moved the segment between review states, when and why")
    p.add_argument("no")
    p.set_defaults(handler=_history)

    add_results_command(ss)

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

    camp = sub.add_parser("campaign", help="create and list campaigns")
    cc = camp.add_subparsers(dest="campaign_command", required=True, metavar="COMMAND")
    add_campaign_results_command(cc)
    p = cc.add_parser("create", help="create a campaign")
    p.add_argument("no")
    p.add_argument("--description", default="")
    p.add_argument("--start", type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--end", type=_date, metavar="YYYY-MM-DD")
    p.add_argument("--status", default="planned", choices=CAMPAIGN_STATUSES)
    p.set_defaults(handler=_campaign_create)
    p = cc.add_parser("update", help="change a campaign's description, dates or status")
    p.add_argument("no")
    p.add_argument("--description")
    p.add_argument("--start", metavar="YYYY-MM-DD", help="new start date ('' clears it)")
    p.add_argument("--end", metavar="YYYY-MM-DD", help="new end date ('' clears it)")
    p.add_argument("--status", choices=CAMPAIGN_STATUSES)
    p.set_defaults(handler=_campaign_update)
    p = cc.add_parser("list", help="campaigns with their segment and logged-segment counts")
    p.set_defaults(handler=_campaign_list)


# ------------------------------------------------------------------------------------------------ argument types


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in the form YYYY-MM-DD") from None


def _percent(text: str) -> float:
    try:
        return float(text.rstrip("%").replace(",", "."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a percentage") from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None


# ------------------------------------------------------------------------------------------------ handlers


def _create(db: Database, args: argparse.Namespace) -> Output:
    info = create_segment(db, args.no, description=args.description, campaign_no=args.campaign, source=args.source)
    over = f" over source {args.source}" if args.source else ""
    return f"created segment {info.no}{over}", {
        "segment": info.no, "status": info.status, "size": info.size, "source": args.source or None,
    }


def _update(db: Database, args: argparse.Namespace) -> Output:
    if args.description is None and args.campaign is None:
        raise UsageError("nothing to change: give --description or --campaign")
    before = get_segment(db, args.no)
    info = update_segment(db, args.no, description=args.description, campaign_no=args.campaign)
    what = "nothing changed" if info.version == before.version else f"status {info.status}"
    return f"updated segment {info.no}: {what}", {
        "segment": info.no, "description": info.description, "campaign": info.campaign_no, "status": info.status}


def _date_order(db: Database | None, args: argparse.Namespace) -> str:
    """The date order --where text is read in: --date-order, else the user's preference, else DMY."""
    chosen = getattr(args, "date_order", None)
    if chosen:
        return str(chosen)
    if db is None:
        return PREFERENCES["date_order"].default
    try:
        return get_preference(db, current_user() or "cli", "date_order")
    except UsageError:
        return PREFERENCES["date_order"].default


def parse_where(db: Database | None, lines: list[str], date_order: str, source: str | None = None) -> Node:
    """--where text as a tree: short dates read in `date_order`, codes checked against the database's values
    ("did you mean FR?"), custom fields known: those of the contact `source` the filter runs on, when one is named."""
    if db is None:
        return parse_text(lines, date_order=date_order)
    return parse_text(lines, fields_for(db, source), date_order=date_order, known=known_values(db, source))


def _filter_source(db: Database | None, args: argparse.Namespace) -> str | None:
    """The contact source a command's filter runs on: `dynamic create --source`, else the segment's own source."""
    if db is None:
        return None
    if hasattr(args, "source"):
        return args.source or None
    no = getattr(args, "no", None)
    return get_segment(db, no).source if no else None


def _read_filter(args: argparse.Namespace, db: Database | None = None) -> Node:
    parts: list[Node] = []
    source = _filter_source(db, args)
    if args.filter is not None:
        try:
            raw = args.filter.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {args.filter}: {exc.strerror}") from exc
        try:
            parts.append(from_json(json.loads(raw), fields_for(db, source) if db is not None else None))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{args.filter}: not JSON (line {exc.lineno}, column {exc.colno})") from exc
    if args.where:
        parts.append(parse_where(db, args.where, _date_order(db, args), source))
    if not parts:
        raise UsageError("give the filter with --where F=EXPR (repeatable) or --filter FILE.json")
    return parts[0] if len(parts) == 1 else Group("all", tuple(parts))


def _options(args: argparse.Namespace) -> ActionOptions:
    return ActionOptions(
        expand_companies=getattr(args, "expand_companies", False),
        related_companies=getattr(args, "related_companies", False),
        ignore_exclusion=getattr(args, "ignore_exclusion", False),
        entire_companies=getattr(args, "entire_companies", False),
        contact_type=getattr(args, "contact_type", None),
    )


def _run(db: Database, args: argparse.Namespace, request: ActionRequest) -> Output:
    if args.preview:
        pv = preview_step(db, args.no, request, dimensions=()).counts
        data = {
            "segment": args.no, "kind": request.kind, "preview": True, "size_before": pv.size_before,
            "size_after": pv.size_after, "matched": pv.matched, "added": pv.added, "removed": pv.removed,
            "unmatched": list(pv.unmatched), "excluded_left_out": pv.skipped_excluded,
        }
        left_out = f"; {pv.skipped_excluded:,} excluded from segments left out" if pv.skipped_excluded else ""
        text = (
            f"preview {request.kind} on {args.no}: {pv.size_before:,} -> {pv.size_after:,} "
            f"(+{pv.added:,} / -{pv.removed:,}; {pv.matched:,} matched{left_out})"
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
        f"{plural(r.size_after, 'member')}"
    )
    return text + _unmatched_text(r.unmatched)


def _unmatched_text(unmatched: tuple[str, ...]) -> str:
    if not unmatched:
        return ""
    shown = "\n".join(f"  not found: {e}" for e in unmatched[:50])
    more = f"\n  … and {len(unmatched) - 50:,} more" if len(unmatched) > 50 else ""
    return f"\n{plural(len(unmatched), 'address', 'addresses')} matched no contact:\n{shown}{more}"


def _filter_action(db: Database, args: argparse.Namespace) -> Output:
    return _run(db, args, ActionRequest(args.kind, _read_filter(args, db), _options(args)))


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
    text = f"{verb} step {result.seq} ({result.kind}) on {args.no}: {plural(result.size_after, 'member')}"
    return text, _result_data(result)


def _show(db: Database, args: argparse.Namespace) -> Output:
    info = get_segment(db, args.no)
    log = criteria_log(db, args.no)
    small = segment_is_small(db, args.no)
    logged = get_logged(db, args.no) if info.status == "logged" else None
    lines = [
        f"segment {info.no}: {info.description}",
        f"  campaign {info.campaign_no or '-'} · owner {info.owner or '-'} · status {info.status} · "
        f"{plural(info.size, 'member')}{' (small)' if small else ''} · created {info.created_at:%Y-%m-%d %H:%M}",
    ]
    if info.source:
        lines.append(f"  contacts from the source {info.source} (Spark)")
    if info.status_comment:
        lines.append(f"  status comment: {info.status_comment}")
    if logged is not None:
        lines.append("  " + _logged_text(logged))
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
        "status": info.status, "status_comment": info.status_comment, "size": info.size, "small": small,
        "source": info.source,
        "version": info.version, "created_at": info.created_at.isoformat(), "updated_at": info.updated_at.isoformat(),
        "logged": _logged_data(logged) if logged is not None else None,
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
    return f"saved {plural(n, 'step')} of {args.no} as criteria {code}", {"code": code, "steps": n}


def _criteria_reuse(db: Database, args: argparse.Namespace) -> Output:
    results = reuse_criteria(db, args.code, args.no)
    lines = [_result_text(r, r.kind) for r in results]
    return "\n".join(lines), [_result_data(r) for r in results]


# ------------------------------------------------------------------------------------------------ export


def _export(db: Database, args: argparse.Namespace) -> Output:
    target: Path = args.file
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"{target}: the file name must end in .csv or .xlsx")
    if target.is_dir():
        raise UsageError(f"{target} is a folder, not a file")
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"folder {folder} does not exist")
    # Refuses a small or empty segment (or group) before anything is written.
    scope = export_scope(db, args.no, args.group)
    data = export_members(db, args.no, fmt, group=scope.group)
    _write_whole(target, data)
    which = f" ({scope.group}: {scope.label})" if scope.group else ""
    text = f"exported {plural(scope.count, 'member')}{which} of segment {args.no} to {target}"
    return text, {
        "segment": args.no, "file": str(target), "format": fmt, "group": scope.group, "members": scope.count,
        "bytes": len(data), "suggested_file_name": scope.file_name(fmt),
    }


def _write_whole(target: Path, data: bytes) -> None:
    """Write to a temporary file beside the target, then rename: a reader never sees a half-written file."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise RefusedError(f"cannot write in {target.parent}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        # mkstemp makes the file private (0600); give the export the permissions any new file would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RefusedError(f"cannot write {target}: {exc.strerror}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------------------ log, review


def _logged_data(info: LoggedInfo) -> dict[str, Any]:
    return dataclasses.asdict(info)


def _logged_text(info: LoggedInfo) -> str:
    text = (
        f"logged as {info.template} on {info.date.isoformat()} by {info.logged_by or '-'}: "
        f"{plural(info.contacted_count, 'interaction')}"
    )
    if info.holdout_count or info.holdout_pct is not None:
        text += (
            f", {plural(info.holdout_count, 'member')} held out ({info.holdout_pct:g} % holdout, "
            f"seed {info.holdout_seed})"
        )
    if info.follow_up_segment_no:
        text += f"; follow-up segment {info.follow_up_segment_no}"
    if info.cancelled:
        when = f" on {info.cancelled_at:%Y-%m-%d %H:%M}" if info.cancelled_at else ""
        text += f"; cancelled{when}"
    return text


def _log(db: Database, args: argparse.Namespace) -> Output:
    if args.follow_up_no is not None and not args.follow_up:
        raise UsageError("--follow-up-no goes with --follow-up")
    if args.seed is not None and args.holdout is None:
        raise UsageError("--seed goes with --holdout PCT")
    info = log_segment(
        db, args.no, template=args.template, date=args.date, follow_up=args.follow_up,
        follow_up_no=args.follow_up_no, holdout_pct=args.holdout, seed=args.seed,
    )
    return f"segment {info.segment_no} {_logged_text(info)}", _logged_data(info)


def _cancel_log(db: Database, args: argparse.Namespace) -> Output:
    info = cancel_logged(db, args.no)
    text = (
        f"cancelled the log of segment {info.segment_no}: {plural(info.contacted_count, 'interaction')} marked "
        "cancelled"
    )
    return text, _logged_data(info)


_TRANSITION_FNS = {
    "submit": submit_segment,
    "withdraw": withdraw_segment,
    "approve": approve_segment,
}
_PAST = {"submit": "submitted", "withdraw": "withdrew", "approve": "approved", "reject": "rejected"}


def _transition(db: Database, args: argparse.Namespace) -> Output:
    if args.verb == "reject":
        info = reject_segment(db, args.no, comment=args.comment)
    else:
        info = _TRANSITION_FNS[args.verb](db, args.no, comment=args.comment)
    text = f"{_PAST[args.verb]} segment {info.no}: now {info.status}"
    data = {"segment": info.no, "status": info.status, "comment": info.status_comment, "version": info.version}
    return text, data


def _history(db: Database, args: argparse.Namespace) -> Output:
    events = status_history(db, args.no)
    lines = [
        f"{e.at:%Y-%m-%d %H:%M}  {e.from_status} -> {e.to_status}  {e.user or '-'}"
        + (f"  {e.comment}" if e.comment else "")
        for e in events
    ]
    text = "\n".join(lines) if lines else f"segment {args.no} has not changed status yet"
    data = [
        {"from": e.from_status, "to": e.to_status, "comment": e.comment, "user": e.user, "at": e.at.isoformat()}
        for e in events
    ]
    return text, data


# ------------------------------------------------------------------------------------------------ campaigns


def _campaign_data(c: CampaignInfo) -> dict[str, Any]:
    return dataclasses.asdict(c)


def _campaign_create(db: Database, args: argparse.Namespace) -> Output:
    info = create_campaign(
        db, args.no, description=args.description, start_date=args.start, end_date=args.end, status=args.status
    )
    return f"created campaign {info.no} ({info.status})", _campaign_data(info)


def _campaign_update(db: Database, args: argparse.Namespace) -> Output:
    info = update_campaign(
        db, args.no, description=args.description, start_date=args.start, end_date=args.end, status=args.status
    )
    start = info.start_date.isoformat() if info.start_date else "-"
    end = info.end_date.isoformat() if info.end_date else "-"
    return f"updated campaign {info.no}: {info.status}, {start} to {end}", _campaign_data(info)


def _campaign_list(db: Database, args: argparse.Namespace) -> Output:
    rows = list_campaigns(db)
    if not rows:
        return "no campaigns", []
    lines = ["no                             status      start       end         segments  logged  description"]
    for c in rows:
        start = c.start_date.isoformat() if c.start_date else "-"
        end = c.end_date.isoformat() if c.end_date else "-"
        lines.append(
            f"{c.no:<30} {c.status:<11} {start:<11} {end:<11} {c.segment_count:>8,} {c.logged_count:>7,}  "
            f"{c.description}"
        )
    return "\n".join(lines), [_campaign_data(c) for c in rows]
