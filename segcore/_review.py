"""What a manager reviewing campaign targets looks at (SPEC §3 "Review"): overlap, composition, drift.

Overlap and composition are read through the evaluation seam (`segcore.evaluation`): overlap in one SQL statement
over segment_members, or from the member masks the in-memory previews cache. Composition compares a segment's chart
distributions with all contacts' (the same fast path as the Builder's charts). Drift replays the segment's criteria with the engine's own
rules inside a transaction that is always rolled back, so it is exactly what the engine would do today and leaves
no trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, insert, select

from ._db import Database
from ._engine import ActionRequest, _apply, _now, _segment_row
from ._errors import NotFoundError, RefusedError, SegcoreError
from ._models import (
    Contact,
    Segment,
    SegmentAction,
    SegmentMember,
    SegmentStatusEvent,
    SourceContact,
    table_of,
)
from ._stats import DIMENSIONS, composition
from .evaluation import all_distributions, evaluator_for, segment_distributions
from .fields import FieldRegistry
from .spark.catalog import load_fields_for

__all__ = ["MAX_OVERLAP_SEGMENTS", "Drift", "Overlap", "drift", "overlap", "segment_composition"]

segments = table_of(Segment)
members = table_of(SegmentMember)
actions = table_of(SegmentAction)
events = table_of(SegmentStatusEvent)
contacts = table_of(Contact)
source_contacts = table_of(SourceContact)

MAX_OVERLAP_SEGMENTS = 30
SAMPLE = 20
_SCRATCH_NO = "~drift-replay"  # not a valid segment number, so it never meets a real one


# --------------------------------------------------------------------------------------------------- overlap


@dataclass(frozen=True)
class Overlap:
    """Members shared by each pair of segments: counts[i][j] is |i ∩ j|, the diagonal each segment's size."""

    nos: tuple[str, ...]
    sizes: tuple[int, ...]
    counts: tuple[tuple[int, ...], ...]

    def jaccard(self, i: int, j: int) -> float:
        """|A ∩ B| ÷ |A ∪ B|; 0 for two empty segments."""
        both = self.counts[i][j]
        either = self.sizes[i] + self.sizes[j] - both
        return both / either if either else 0.0

    def jaccard_matrix(self) -> tuple[tuple[float, ...], ...]:
        """Jaccard of every pair, in the order of `nos` (1 on the diagonal of a non-empty segment)."""
        return tuple(tuple(self.jaccard(i, j) for j in range(len(self.nos))) for i in range(len(self.nos)))


def overlap(db: Database, nos: Sequence[str]) -> Overlap:
    """Pairwise overlap of the given segments (in the order given, duplicates dropped), in one statement."""
    wanted = tuple(dict.fromkeys(no.strip() for no in nos if no and no.strip()))
    if len(wanted) > MAX_OVERLAP_SEGMENTS:
        raise RefusedError(f"compare at most {MAX_OVERLAP_SEGMENTS} segments at a time")
    with db.read() as conn:
        found = dict(conn.execute(select(segments.c.no, segments.c.id).where(segments.c.no.in_(wanted))).all())
        missing = [no for no in wanted if no not in found]
        if missing:
            raise NotFoundError(f"no segment {missing[0]!r}")
        ids = [found[no] for no in wanted]
    pairs = evaluator_for(db).overlap(ids)
    matrix = tuple(
        tuple(pairs.get((min(i, j), max(i, j)), 0) for j in ids) for i in ids
    )
    return Overlap(wanted, tuple(matrix[k][k] for k in range(len(ids))), matrix)


# --------------------------------------------------------------------------------------------------- composition


def segment_composition(
    db: Database, no: str, *, today: dt.date | None = None, dimensions: Sequence[str] = tuple(DIMENSIONS)
) -> dict[str, list[dict[str, Any]]]:
    """Per chart dimension (the seven by default, or any of `chart_dimensions`): bucket, segment count and share,
    share in all contacts, index (100 = as in all).

    For a small segment the buckets under the minimum are hidden: their segment count, share and index are None,
    so nothing tells how many of a tiny group are in it."""
    seg = segment_distributions(db, no, today=today, dimensions=dimensions)
    everyone = all_distributions(db, today=today, dimensions=dimensions)
    out: dict[str, list[dict[str, Any]]] = {}
    for dim in dimensions:
        rows = composition(seg[dim], everyone[dim])
        if seg[dim].hidden:
            for r in rows:
                if r["bucket"] not in seg[dim].counts:
                    r.update(segment_count=None, segment_share=None, index=None)
        out[dim] = rows
    return out


# --------------------------------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class Drift:
    """Who would join or leave the segment if the criteria (as approved, or as they stand) were replayed today."""

    segment_no: str
    reference: str  # "approval" (the steps that were approved) or "last step" (the applied steps)
    reference_at: dt.datetime | None
    steps_replayed: int
    current_size: int
    replay_size: int
    joined: int
    left: int
    joined_sample: tuple[str, ...]
    left_sample: tuple[str, ...]

    @property
    def unchanged(self) -> bool:
        """True when the replay gives exactly the current members."""
        return self.joined == 0 and self.left == 0


def _step(r: sa.Row[Any], fields: FieldRegistry) -> ActionRequest:
    step: dict[str, Any] = {"kind": r.kind, "options": r.options or {}}
    if r.filter_json is not None:
        step["filter"] = r.filter_json
    if r.payload:
        step["payload"] = r.payload
    return ActionRequest.from_step(step, fields)


def drift(db: Database, no: str, *, today: dt.date | None = None) -> Drift:
    """Replay the segment's criteria from an empty set on today's data, with the engine, and compare the members.

    An approved (or logged after approval) segment replays what was approved; otherwise its applied steps. Steps
    naming contacts replay as they were; a reused segment brings its current members. Nothing is written."""
    with db.scratch() as conn:
        row = _segment_row(conn, no)
        approved = row.approved_head_seq is not None and row.status in ("approved", "logged")
        upto = int(row.approved_head_seq) if approved else int(row.head_seq)
        steps = conn.execute(
            select(actions).where(actions.c.segment_id == row.id, actions.c.seq <= upto).order_by(actions.c.seq)
        ).all()
        if approved:
            reference_at = conn.execute(
                select(func.max(events.c.at)).where(events.c.segment_id == row.id, events.c.to_status == "approved")
            ).scalar()
        else:
            reference_at = steps[-1].created_at if steps else None
        now = _now()
        conn.execute(
            insert(segments).values(
                no=_SCRATCH_NO, description="", owner="drift", status="draft", version=0, head_seq=0, size=0,
                created_at=now, updated_at=now, source=row.source,
            )
        )
        # Over the segment's own contacts: a segment built over a source replays in Spark, with the source's fields.
        fields = load_fields_for(conn, row.source)
        for r in steps:
            try:
                _apply(conn, _SCRATCH_NO, _step(r, fields), user="drift", expected_version=None, today=today)
            except SegcoreError as e:
                raise RefusedError(f"step {r.seq} of segment {no} cannot be replayed today: {e}") from e
        scratch_id = conn.execute(select(segments.c.id).where(segments.c.no == _SCRATCH_NO)).scalar_one()

        def only_in(x: int, y: int) -> sa.Select[Any]:
            other = sa.exists().where(members.c.segment_id == y, members.c.contact_id == m.c.contact_id)
            return select(m.c.contact_id).where(m.c.segment_id == x, ~other)

        m = members.alias("m")
        counts = {}
        samples = {}
        for name, (x, y) in {"joined": (scratch_id, row.id), "left": (row.id, scratch_id)}.items():
            ids = only_in(x, y)
            counts[name] = int(conn.execute(select(func.count()).select_from(ids.subquery())).scalar_one())
            numbers = source_contacts if row.source is not None else contacts
            samples[name] = tuple(
                conn.execute(
                    select(numbers.c.contact_no)
                    .where(numbers.c.id.in_(ids))
                    .order_by(numbers.c.contact_no)
                    .limit(SAMPLE)
                ).scalars()
            )
        replay_size = int(conn.execute(select(segments.c.size).where(segments.c.id == scratch_id)).scalar_one())
    return Drift(
        segment_no=no,
        reference="approval" if approved else "last step",
        reference_at=reference_at,
        steps_replayed=len(steps),
        current_size=int(row.size),
        replay_size=replay_size,
        joined=counts["joined"],
        left=counts["left"],
        joined_sample=samples["joined"],
        left_sample=samples["left"],
    )
