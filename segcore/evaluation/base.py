"""The evaluation interface: what the engine, the pages and the CLI may ask of a backend, and the values it answers.

Every read of "who matches" goes through an `Evaluator`: the count of a filter, the preview of a pending step (counts
before and after, who enters or leaves, every chart), the charts of a segment or of all contacts, and the overlap
of segments. Backends answer the same questions with the same numbers (tests/test_evaluation.py holds them equal to
an independent model); which one answers is chosen by `segcore.evaluation.evaluator_for`, never by the caller.

The commit of a step is the one read that happens inside a write transaction: `StepSets` gives the engine the
contacts a step works with as a SELECT in the application database, so the member rows are written set-based in
that same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Select

from .._filter_tree import Node
from .._stats import Distribution
from .._steps import ActionRequest, Preview

__all__ = ["Evaluator", "FilterCount", "MatchedSet", "StepPreview", "StepSets"]


@dataclass(frozen=True)
class FilterCount:
    """How many contacts a filter matches: kept (not flagged "exclude from segments"), flagged, and all contacts."""

    matched: int  # matching and not flagged: the size a plain Add or a dynamic segment gives
    excluded: int  # matching but flagged: the gap between a value's count and an Add's preview
    total: int  # all contacts, matching or not


@dataclass(frozen=True)
class StepPreview:
    """Everything the Builder shows about a pending step, computed without writing."""

    counts: Preview
    before: dict[str, Distribution]
    after: dict[str, Distribution]
    entering: tuple[int, ...]  # a sample of contact ids that would join
    leaving: tuple[int, ...]  # a sample of contact ids that would leave
    backend: str  # the name of the backend that answered ("memory", "sql", ...)
    elapsed_ms: float
    # The samples as contact numbers, when the contacts are not in this database (a segment over a source).
    entering_nos: tuple[str, ...] = ()
    leaving_nos: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchedSet:
    """The contacts C' a step works with, as a SELECT of contact ids in the application database.

    `from_contacts` says the SELECT reads `contacts.id FROM contacts` with the match as its WHERE, so the engine may
    insert straight from it (the plain Add's one scan); a backend that brings ids from elsewhere (a scratch table
    filled from Spark) says False, and the engine goes through its own scratch table instead."""

    ids: Select[Any]
    unmatched: tuple[str, ...] = ()  # named inputs (e-mails) that matched no contact
    from_contacts: bool = False
    # Set by a backend that computes the step elsewhere (Spark): `ids` then holds only the contacts the step adds or
    # removes (its own `removal_condition` reads them so), and `count` how many contacts it matched.
    count: int | None = None
    # Set by a backend that holds the contacts' columns itself (the in-memory snapshot): the ids `ids` selects, as
    # a sorted array, so the engine inserts or removes them in one statement from one bound list.
    changed: np.ndarray | None = None


@runtime_checkable
class Evaluator(Protocol):
    """The read side of the engine: counts, previews, charts and overlap, answered by one backend."""

    name: str

    def count(self, node: Node, *, today: dt.date) -> FilterCount:
        """How many contacts `node` matches (a dynamic segment's count, the Builder's exclusion gap)."""
        ...

    def preview_step(
        self, no: str, request: ActionRequest, *, today: dt.date, dimensions: Sequence[str], sample: int
    ) -> StepPreview:
        """What `request` would do to segment `no`: counts, charts before and after, samples (charts unmasked)."""
        ...

    def segment_distributions(
        self, no: str, *, today: dt.date, dimensions: Sequence[str]
    ) -> dict[str, Distribution]:
        """The charts of segment `no`'s current members (unmasked)."""
        ...

    def all_distributions(self, *, today: dt.date, dimensions: Sequence[str]) -> dict[str, Distribution]:
        """The charts of all contacts (the reference of a segment's composition)."""
        ...

    def overlap(self, segment_ids: Sequence[int]) -> dict[tuple[int, int], int]:
        """|A ∩ B| for every pair of the given segments, keyed (smaller id, larger id); (a, a) is a's size."""
        ...


class StepSets(Protocol):
    """The sets a step's commit writes from, read inside the engine's write transaction."""

    def matched_set(
        self,
        request: ActionRequest,
        *,
        today: dt.date | None,
        segment_id: int | None = None,
        exclusion: bool = True,
    ) -> MatchedSet:
        """C' of `request`: for Refine/Reduce scoped to the members of `segment_id` (unless entire companies),
        flagged contacts left out of an adding step unless `exclusion` is False. NotFoundError for unknown named
        contacts."""
        ...

    def removal_condition(
        self, segment_id: int, request: ActionRequest, matched: Select[Any]
    ) -> sa.ColumnElement[bool]:
        """Which member rows of `segment_id` a removing step takes out, given its C' (`matched`)."""
        ...

    def count_ids(self, ids: Select[Any]) -> int:
        """How many rows a SELECT of ids gives."""
        ...
