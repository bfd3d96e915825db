"""The power hint before logging: with this many members, this holdout share and this base rate, the smallest lift
the results test can detect (80 % power, two-sided 5 % level).

The base rate is the share of the segment's own members (the control group is drawn from them, so their rate is
what the test will see) with at least one outcome of the chosen kinds in the last 90 days (today − 89 .. today); without
a segment, the share of all contacts. The hint itself (`detectable_lift`) is a few milliseconds and cached, so a
page can call it on every move of the holdout slider; the base rate is one read per segment and metric.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.optimize import brentq
from sqlalchemy import ColumnElement, func, select
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from .._db import Database
from .._errors import NotFoundError, UsageError
from .._models import Contact, Interaction, Outcome, Segment, SegmentMember, table_of
from .compute import POSITIVE_EVALUATIONS, _ints, _read, _today, normalise_kinds

__all__ = ["BASE_RATE_DAYS", "BaseRate", "PowerHint", "base_rate", "detectable_lift"]

BASE_RATE_DAYS = 90


@dataclass(frozen=True)
class PowerHint:
    """The smallest lift a test on these groups detects; None (with `reason`) when no lift can be detected."""

    members: int
    treated: int
    control: int
    base_rate: float
    alpha: float
    power: float
    min_lift_abs: float | None  # percentage points as a fraction: 0.02 = +2 points
    min_lift_rel: float | None  # relative to the base rate: 0.25 = +25 %; None when the base rate is 0
    detectable_rate: float | None  # base_rate + min_lift_abs
    effect_size: float | None  # Cohen's h the test needs
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class BaseRate:
    """The share of a population with at least one counted outcome in the last `days` days."""

    rate: float | None  # None for an empty population
    responders: int
    contacts: int
    days: int
    kinds: tuple[str, ...] | None
    population: str  # "all contacts" or "segment NO"

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "kinds": list(self.kinds) if self.kinds else None}


def _holdout_count(size: int, pct: float) -> int:
    # The same rounding as Log segment's draw (round half up), so the hint speaks of the groups the log will make.
    return int(math.floor(size * pct / 100 + 0.5))


def detectable_lift(
    members: int, holdout_pct: float, base_rate: float, alpha: float = 0.05, power: float = 0.8
) -> PowerHint:
    """The smallest absolute and relative lift over `base_rate` a two-sided test detects with `power`."""
    if isinstance(members, bool) or int(members) != members or members < 0:
        raise UsageError(f"the member count is a whole number, 0 or more, not {members!r}")
    pct = float(holdout_pct)
    if not 0 <= pct < 100 or math.isnan(pct):
        raise UsageError(f"the holdout is a share from 0 to below 100 %, not {holdout_pct}")
    rate = float(base_rate)
    if not 0 <= rate <= 1 or math.isnan(rate):
        raise UsageError(f"the base rate is a share from 0 to 1, not {base_rate}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise UsageError("alpha and power are shares between 0 and 1")
    return _detectable(int(members), pct, rate, float(alpha), float(power))


@lru_cache(maxsize=4096)
def _detectable(members: int, pct: float, rate: float, alpha: float, power: float) -> PowerHint:
    control = _holdout_count(members, pct)
    treated = members - control
    base: dict[str, Any] = dict(
        members=members, treated=treated, control=control, base_rate=rate, alpha=alpha, power=power
    )
    none: dict[str, Any] = dict(min_lift_abs=None, min_lift_rel=None, detectable_rate=None, effect_size=None)
    if control == 0 or treated == 0:
        return PowerHint(**base, **none, reason="no control group: a holdout is needed to measure a lift")
    if rate >= 1:
        return PowerHint(**base, **none, reason="every contact responds already: no lift is possible")
    # Cohen's h the test needs (statsmodels solves the normal power equation for two independent groups).
    h = float(
        NormalIndPower().solve_power(
            effect_size=None, nobs1=treated, alpha=alpha, power=power, ratio=control / treated,
            alternative="two-sided",
        )
    )
    if not math.isfinite(h) or proportion_effectsize(1.0, rate) < h:
        return PowerHint(**base, **none, reason="the groups are too small to detect any lift over this base rate")
    # The treated rate whose effect size over the base rate is h (effect size grows with the rate above it).
    target = float(brentq(lambda p: proportion_effectsize(p, rate) - h, rate, 1.0, xtol=1e-12))
    lift = target - rate
    return PowerHint(
        **base,
        min_lift_abs=lift,
        min_lift_rel=lift / rate if rate > 0 else None,
        detectable_rate=target,
        effect_size=h,
    )


def base_rate(
    db: Database,
    kinds: str | Sequence[str] | None = None,
    days: int = BASE_RATE_DAYS,
    *,
    segment_no: str | None = None,
    include_positive_interactions: bool = False,
    today: dt.date | str | None = None,
) -> BaseRate:
    """The share of the segment's members (or of all contacts) with an outcome of `kinds` in the last `days` days."""
    codes = normalise_kinds(kinds)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3660:
        raise UsageError(f"the base-rate period is 1 to 3,660 days, not {days!r}")
    end = _today(today)
    start = end - dt.timedelta(days=days - 1)
    o, it = table_of(Outcome), table_of(Interaction)
    seg_t, mem_t, contacts_t = table_of(Segment), table_of(SegmentMember), table_of(Contact)
    with db.read() as conn:
        segment_id = None
        if segment_no is not None:
            seg = conn.execute(select(seg_t.c.id, seg_t.c.size).where(seg_t.c.no == segment_no)).first()
            if seg is None:
                raise NotFoundError(f"no segment {segment_no!r}")
            segment_id, contacts, population = int(seg.id), int(seg.size), f"segment {segment_no}"
        else:
            contacts = int(conn.execute(select(func.count()).select_from(contacts_t)).scalar_one())
            population = "all contacts"

        def inside(contact_id: ColumnElement[Any]) -> list[ColumnElement[bool]]:
            # A correlated probe of the segment's key per row (as results do), not an IN list SQLite would walk.
            if segment_id is None:
                return []
            probe = select(mem_t.c.contact_id).where(mem_t.c.segment_id == segment_id, mem_t.c.contact_id == contact_id)
            return [probe.exists()]

        stmt = select(o.c.contact_id).where(o.c.date >= start, o.c.date <= end, *inside(o.c.contact_id))
        if codes is not None:
            stmt = stmt.where(o.c.kind.in_(codes))
        statements = [stmt]
        if include_positive_interactions:
            statements.append(
                select(it.c.contact_id).where(
                    it.c.date >= start, it.c.date <= end, it.c.evaluation.in_(POSITIVE_EVALUATIONS),
                    it.c.cancelled.is_(False), *inside(it.c.contact_id),
                )
            )
        found = [_ints(_read(conn, s), "contact_id") for s in statements]
    responders = int(len(np.unique(np.concatenate(found)))) if found else 0
    return BaseRate(
        rate=responders / contacts if contacts else None,
        responders=responders,
        contacts=contacts,
        days=days,
        kinds=codes,
        population=population,
    )
