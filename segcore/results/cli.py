"""The `segment results NO` and `campaign results NO` commands: treated against control, as text or JSON.

Register them with `add_results_command(segment_subparsers)` and `add_campaign_results_command(campaign_subparsers)`;
the handlers return (plain text, JSON-able data) like every other handler of segcore.cli.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from .._db import Database
from .._words import plural
from .compute import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, Results, campaign_results, segment_results

__all__ = [
    "add_campaign_results_command",
    "add_results_command",
    "campaign_results_command",
    "results_command",
    "results_text",
]

Output = tuple[str, Any]


def _window(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of days") from None
    if not 1 <= value <= MAX_WINDOW_DAYS:
        raise argparse.ArgumentTypeError(f"the window is 1 to {MAX_WINDOW_DAYS} days, not {value}")
    return value


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in the form YYYY-MM-DD") from None


def _metric_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kinds", metavar="ORDER,...", help="the outcome kinds that count as a response (default: any)")
    p.add_argument("--window", type=_window, default=DEFAULT_WINDOW_DAYS, metavar="DAYS",
                   help=f"days after the log day that count (default {DEFAULT_WINDOW_DAYS})")
    p.add_argument("--positive-interactions", action="store_true",
                   help="a positive or very positive interaction in the window counts as a response too")
    p.add_argument("--today", type=_date, metavar="YYYY-MM-DD", help="count the days up to this date (default today)")


_DESCRIPTION = (
    "A member responded when it has at least one outcome of the chosen kinds dated from the day after the log to "
    "the end of the window (only days that have passed count). Treated = members contacted, control = the holdout. "
    "Rates carry a 95% Wilson interval, the lift a 95% Newcombe interval; the p-value is Fisher's exact test when "
    "any cell is under 10, else the two-proportion z-test; revenue per contact has a Welch interval."
)


def add_results_command(segment_subparsers: Any) -> None:
    """Register `segment results NO [--kinds ORDER,...] [--window 30] [--positive-interactions] [--today D]`."""
    p = segment_subparsers.add_parser(
        "results", help="response of the contacted members against the control group", description=_DESCRIPTION
    )
    p.add_argument("no")
    _metric_options(p)
    p.set_defaults(handler=results_command)


def add_campaign_results_command(campaign_subparsers: Any) -> None:
    """Register `campaign results NO ...`: every logged segment of the campaign side by side."""
    p = campaign_subparsers.add_parser(
        "results", help="results of every logged segment of a campaign", description=_DESCRIPTION
    )
    p.add_argument("no")
    _metric_options(p)
    p.set_defaults(handler=campaign_results_command)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kinds": args.kinds,
        "window_days": args.window,
        "include_positive_interactions": args.positive_interactions,
        "today": args.today,
    }


def results_command(db: Database, args: argparse.Namespace) -> Output:
    """`segment results NO`: (text, Results.as_dict())."""
    result = segment_results(db, args.no, **_options(args))
    return results_text(result), result.as_dict()


def campaign_results_command(db: Database, args: argparse.Namespace) -> Output:
    """`campaign results NO`: one block a logged segment, and a JSON list."""
    results = campaign_results(db, args.no, **_options(args))
    if not results:
        return f"campaign {args.no} has no logged segment yet", []
    return "\n\n".join(results_text(r) for r in results), [r.as_dict() for r in results]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}"


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _signed_money(value: float | None) -> str:
    return "–" if value is None else f"{value:+,.2f}"


def _count(value: int | float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def results_text(r: Results) -> str:
    """Results for a person: what was counted, the state, then each group and the lift, never a rate alone."""
    metric = ", ".join(r.kinds) if r.kinds else "any outcome"
    if r.include_positive_interactions:
        metric += " or a positive interaction"
    campaign = f", campaign {r.campaign_no}" if r.campaign_no else ""
    lines = [
        f"segment {r.segment_no} (logged {r.log_date.isoformat()}{campaign}): {metric} within {plural(r.window_days, 'day')} "
        f"after the log ({r.days_observed} of {plural(r.window_days, 'day')} observed, "
        f"{r.window_start.isoformat()} to {r.window_end.isoformat()})",
        f"state: {r.state}: {r.message}",
    ]
    if r.state in ("cancelled", "too_early"):
        lines.append(f"treated {plural(r.treated.contacts, 'contact')}, control {plural(r.control.contacts, 'contact')}")
        return "\n".join(lines)
    lines.append(f"{'':<9}{'contacts':>10}{'responders':>12}{'rate':>8}  {'95% interval':<17}{'revenue':>14}"
                 f"{'per contact':>13}")
    for name, g in (("treated", r.treated), ("control", r.control)):
        interval = f"[{_pct(g.rate_low)}, {_pct(g.rate_high)}]" if g.rate is not None else "–"
        lines.append(
            f"{name:<9}{g.contacts:>10,}{_count(g.responders):>12}{_pct(g.rate):>8}  {interval:<17}"
            f"{_money(g.revenue):>14}{_money(g.revenue_per_contact):>13}"
        )
    if r.lift_abs is None:
        return "\n".join(lines)
    rel = ""
    if r.lift_rel is not None:
        rel_ci = (f" [{_points(r.lift_rel_low)}%, {_points(r.lift_rel_high)}%]"
                  if r.lift_rel_low is not None else "")
        rel = f", relative {_points(r.lift_rel)}%{rel_ci}"
    test = "Fisher's exact test" if r.test == "fisher" else "two-proportion z-test"
    lines.append(
        f"lift: {_points(r.lift_abs)} points [{_points(r.lift_abs_low)}, {_points(r.lift_abs_high)}]{rel}, "
        f"p = {r.p_value:.4f} ({test})"
    )
    if r.revenue_lift is not None:
        ci = (f" [{_signed_money(r.revenue_lift_low)}, {_signed_money(r.revenue_lift_high)}] (Welch)"
              if r.revenue_lift_low is not None else " (no interval: no spread in revenue)")
        p = f", p = {r.revenue_p_value:.4f}" if r.revenue_p_value is not None else ""
        lines.append(f"revenue per contact: {_signed_money(r.revenue_lift)}{ci}{p}")
    lines.append(
        f"incremental: {_count(r.incremental_responders)} responders [{_count(r.incremental_responders_low)}, "
        f"{_count(r.incremental_responders_high)}], revenue {_signed_money(r.incremental_revenue)}"
        + (f" [{_signed_money(r.incremental_revenue_low)}, {_signed_money(r.incremental_revenue_high)}]"
           if r.incremental_revenue_low is not None else "")
    )
    return "\n".join(lines)
