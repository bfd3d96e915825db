"""The command line (SPEC §4): `python -m segcore [--db URL] [--json] COMMAND ...`.

One sub-parser per command, one small handler per command. A handler takes the open database and the parsed
arguments and returns (plain text, JSON-able data); main() prints one or the other on standard output. Errors are
SegcoreError: main() prints one line `error: ...` on standard error and returns the error's exit code (2 for a usage
error, 1 for a refused action), never a traceback. Other command groups plug in with their own add_*_commands(sub).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from ._cli_auth import USER_ENV, add_auth_commands, cli_user
from ._cli_import import add_import_commands as _add_import_commands
from ._cli_import import progress_printer
from ._db import ENV_VAR, Database
from ._demo import DEMO_MAX_CONTACTS, load_demo
from ._errors import ImportRejected, RefusedError, SegcoreError, UsageError
from ._models import Contact
from ._settings import SETTINGS, set_setting, settings_of
from ._words import plural
from .auth import acting_as
from .imports import ImportReport

__all__ = ["build_parser", "main"]

Output = tuple[str, Any]  # (plain text, JSON-able data)
Handler = Callable[[Database, argparse.Namespace], Output]

# Rejected rows listed in plain text; --json carries the report's first 1,000.
TEXT_ERROR_LINES = 20


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are UsageError, so main() reports them in one line like every other error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


def _count(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 1 <= value <= DEMO_MAX_CONTACTS:
        raise argparse.ArgumentTypeError(f"the demo holds 1 to {DEMO_MAX_CONTACTS:,} contacts, not {value:,}")
    return value


def _existing_file(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"file not found: {text}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    return path


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in the form YYYY-MM-DD") from None


def build_parser() -> argparse.ArgumentParser:
    """The parser with every command registered."""
    parser = _Parser(
        prog="python -m segcore",
        description="Segment Explorer: build marketing segments step by step, preview every step, undo anything.",
        epilog=f"The database URL comes from --db, else ${ENV_VAR}, else the embedded SQLite file under data/. "
        "Exit status: 0 done, 1 refused (nothing changed), 2 usage error.",
    )
    parser.add_argument(
        "--db", metavar="URL", help=f"database URL (default: ${ENV_VAR} or the embedded SQLite file)"
    )
    parser.add_argument("--json", action="store_true", help="machine output on standard output as JSON")
    parser.add_argument(
        "--user", metavar="NAME",
        help=f"the account this command acts as (default: ${USER_ENV}; without accounts, the operating-system user)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_init_command(sub)
    add_import_commands(sub)
    _add_other_commands(sub)
    return parser


def _add_other_commands(sub: Any) -> None:
    from ._cli_audiences import add_audience_commands
    from ._cli_segment import add_segment_commands
    from ._cli_sources import add_source_commands

    add_segment_commands(sub)
    add_source_commands(sub)
    add_audience_commands(sub)
    add_settings_command(sub)
    add_auth_commands(sub)


# ------------------------------------------------------------------------------------------------------ settings


def add_settings_command(sub: Any) -> None:
    """Register `settings [show]` and `settings set KEY VALUE`."""
    lines = "; ".join(f"{s.key} (default {s.default:,}): {s.help}" for s in SETTINGS.values())
    p = sub.add_parser("settings", help="show or change the settings", description=f"Settings: {lines}.")
    ssub = p.add_subparsers(dest="settings_command", metavar="COMMAND", parser_class=_Parser)
    p.set_defaults(handler=_settings_show)
    ssub.add_parser("show", help="every setting with its value").set_defaults(handler=_settings_show)
    s = ssub.add_parser("set", help="change one setting")
    s.add_argument("key", choices=sorted(SETTINGS), metavar="KEY", help=", ".join(sorted(SETTINGS)))
    s.add_argument("value", metavar="VALUE")
    s.set_defaults(handler=_settings_set)


def _settings_show(db: Database, args: argparse.Namespace) -> Output:
    values = settings_of(db)
    width = max(map(len, values))
    return "\n".join(f"{k:<{width}}  {v:>13,}  {SETTINGS[k].help}" for k, v in values.items()), values


def _settings_set(db: Database, args: argparse.Namespace) -> Output:
    value = set_setting(db, args.key, args.value)
    return f"{args.key} = {value:,}", {args.key: value}


# ---------------------------------------------------------------------------------------------------------- init


def add_init_command(sub: Any) -> None:
    """Register `init`."""
    p = sub.add_parser(
        "init",
        help="create the schema; optionally load generated demo contacts",
        description="Create the database schema (or bring an older one up to date). With --demo N, also load N "
        "generated demo contacts (about 15%% companies) with about two years of interactions. Demo data goes only "
        "into a database without contacts, unless --force: then demo contacts whose numbers (CT000001 ...) exist "
        "already are updated, the others added, and their interactions added to the log.",
    )
    p.add_argument(
        "--demo", type=_count, metavar="N", help=f"load N demo contacts (1 to {DEMO_MAX_CONTACTS:,})"
    )
    p.add_argument(
        "--seed", type=int, default=7, help="random seed of the demo data (default 7): same seed, same data"
    )
    p.add_argument(
        "--today", type=_date, metavar="YYYY-MM-DD", help="reference date of the demo data (default today)"
    )
    p.add_argument(
        "--force", action="store_true", help="load demo data even though the database holds contacts"
    )
    p.set_defaults(handler=_init)


def _init(db: Database, args: argparse.Namespace) -> Output:
    url = make_url(db.url).render_as_string(hide_password=True)
    data: dict[str, Any] = {"url": url, "schema_version": db.schema_version(), "demo": None}
    lines = [f"database ready: {url} (schema version {data['schema_version']})"]
    if args.demo:
        with db.read() as conn:
            stored = conn.execute(select(func.count()).select_from(Contact)).scalar_one()
        if stored and not args.force:
            raise RefusedError(
                f"the database already holds {plural(stored, 'contact')}: add --force to load demo contacts anyway"
            )
        # As the dashboard's first start: a logged demo campaign with a holdout, so `segment results` has an answer.
        summary = load_demo(
            db, args.demo, seed=args.seed, today=args.today, progress=progress_printer("demo"), logged_campaign=True
        )
        data["demo"] = summary.as_dict()
        lines.append(
            f"demo data loaded: {plural(summary.contacts, 'contact')} ({plural(summary.companies, 'company', 'companies')}, "
            f"{summary.inserted:,} new, {summary.updated:,} updated), {plural(summary.interactions, 'interaction')} "
            f"(seed {summary.seed}, reference date {summary.today.isoformat()})"
        )
        if summary.logged_segment:
            lines.append(
                f"demo campaign logged: segment {summary.logged_segment} with a control group "
                f"(try: segment results {summary.logged_segment})"
            )
    return "\n".join(lines), data


# -------------------------------------------------------------------------------------------------------- import


def add_import_commands(sub: Any) -> None:
    """Register `import contacts|interactions`, `fields` and `mappings` (in _cli_import)."""
    _add_import_commands(sub, _Parser, _existing_file)


def report_text(report: ImportReport, *, limit: int = TEXT_ERROR_LINES) -> str:
    """The report for a person: one summary line, then one line per rejected row (capped)."""
    lines = [report.summary()]
    lines += [f"  {e.message}" for e in report.errors[:limit]]
    more = report.errors_total - min(limit, len(report.errors))
    if more > 0:
        lines.append(
            f"  ... and {more:,} more problems (the JSON report lists the first {len(report.errors):,})"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- main


def _emit(args: argparse.Namespace | None, text: str, data: Any, stream: TextIO) -> None:
    if args is not None and getattr(args, "json", False):
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str), file=stream)
    elif text:
        print(text, file=stream)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 done, 1 refused, 2 usage error)."""
    parser = build_parser()
    args: argparse.Namespace | None = None
    try:
        try:
            args = parser.parse_args(list(argv) if argv is not None else None)
        except SystemExit as exc:  # --help and --version end here with status 0
            return int(exc.code or 0)
        handler: Handler | None = getattr(args, "handler", None)
        if handler is None:
            raise UsageError("no command given (see python -m segcore --help)")
        db = Database.open(args.db)
        try:
            # Writers called without user= act as this name (current_user), so every command obeys the roles.
            with acting_as(cli_user(db, args.user)):
                text, data = handler(db, args)
        finally:
            db.dispose()
        _emit(args, text, data, sys.stdout)
        return 0
    except SegcoreError as exc:
        # A refused import still shows its report: which rows, which columns, why.
        if isinstance(exc, ImportRejected) and isinstance(exc.report, ImportReport) and exc.report.rows_total:
            _emit(args, report_text(exc.report), exc.report.as_dict(), sys.stdout)
        print(f"error: {_one_line(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the promise is one line, never a traceback
        if os.environ.get("SEGCORE_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))[:300]}", file=sys.stderr)
        return 1
