"""The scan threads (segcore/_parallel.py) and what runs on them: splitting rows, running tasks, and the in-memory
charts and previews, which must be the same on one thread as on several, split or not."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from segcore import Database
from segcore._demo import load_demo
from segcore._engine import apply_action, create_segment
from segcore._filter_text import parse_text
from segcore._parallel import chunks, run_all, thread_count, threads
from segcore._steps import ActionOptions, ActionRequest
from segcore.evaluation import clear_caches, evaluator_for
from segcore.evaluation.memory import MemoryEvaluator

TODAY = dt.date(2026, 3, 1)


@pytest.mark.parametrize(
    ("n", "count", "min_rows", "expected"),
    [
        (10, 2, 1, [(0, 5), (5, 10)]),
        (11, 2, 1, [(0, 5), (5, 11)]),
        (10, 3, 1, [(0, 3), (3, 6), (6, 10)]),
        (10, 2, 11, [(0, 10)]),  # under min_rows: one piece
        (10, 1, 1, [(0, 10)]),  # one thread: one piece
        (0, 2, 1, [(0, 0)]),  # nothing to split
        (1, 4, 1, [(0, 0), (0, 0), (0, 0), (0, 1)]),
    ],
)
def test_chunks_cover_the_rows_once(
    n: int, count: int, min_rows: int, expected: list[tuple[int, int]]
) -> None:
    with threads(count, min_rows=min_rows):
        got = chunks(n)
    assert got == expected
    assert sum(hi - lo for lo, hi in got) == n


def test_threads_restores_the_setting() -> None:
    before = thread_count()
    with threads(3):
        assert thread_count() == 3
    assert thread_count() == before


@pytest.mark.parametrize("count", [1, 2, 4])
def test_run_all_keeps_order_and_nests_without_waiting_for_itself(count: int) -> None:
    def inner(i: int) -> int:
        # A task that splits again runs its parts on its own thread: the pool is never waited for from inside.
        return sum(run_all([lambda j=j: i * 10 + j for j in range(3)]))

    with threads(count, min_rows=1):
        assert run_all([lambda i=i: inner(i) for i in range(7)]) == [30 * i + 3 for i in range(7)]


def test_run_all_raises_a_tasks_error() -> None:
    def boom() -> int:
        raise ValueError("task failed")

    with threads(2, min_rows=1), pytest.raises(ValueError, match="task failed"):
        run_all([lambda: 1, boom, lambda: 3])


def test_run_all_uses_other_threads() -> None:
    seen: set[int] = set()
    barrier = threading.Barrier(2, timeout=10)

    def task() -> None:
        seen.add(threading.get_ident())
        barrier.wait()  # two tasks at once, or this times out

    with threads(2, min_rows=1):
        run_all([task, task])
    assert len(seen) == 2


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Database:
    db = Database.open(f"sqlite:///{tmp_path_factory.mktemp('par') / 'demo.db'}")
    load_demo(db, 3000, today=TODAY, user="test")
    create_segment(db, "BASE", description="base", owner="test")
    apply_action(db, "BASE", ActionRequest("add", parse_text(["country=FR|NL|DE"])), user="test")
    return db


STEPS = [
    ("add", ["country=BE|US"], ActionOptions()),
    ("add", ["age=25..44", "gender=female"], ActionOptions()),
    ("add", ["industry_groups=RETAIL|TECH"], ActionOptions(expand_companies=True)),
    ("add", ["interactions.template=EMAIL"], ActionOptions(ignore_exclusion=True)),
    ("refine", ["total_spent=>=100"], ActionOptions()),
    ("refine", ["mailing_groups=NEWSLETTER"], ActionOptions(entire_companies=True)),
    ("reduce", ["churn_risk=high"], ActionOptions()),
    ("reduce", ["name=*son*"], ActionOptions()),
    ("add", ["country=ZZ"], ActionOptions()),  # matches nobody: empty sets on every side
]


@pytest.mark.parametrize(("kind", "lines", "options"), STEPS)
def test_previews_are_the_same_on_one_thread_and_split(
    demo: Database, kind: str, lines: list[str], options: ActionOptions
) -> None:
    request = ActionRequest(kind, parse_text(lines), options)
    results = []
    for count, min_rows in ((1, None), (2, 1), (3, 1)):
        clear_caches()  # charts are cached per segment version: each setting computes its own
        with threads(count, min_rows=min_rows):
            ev = evaluator_for(demo, backend="memory")
            assert isinstance(ev, MemoryEvaluator)
            pv = ev.preview_step("BASE", request, today=TODAY, dimensions=_dims(), sample=5)
            everyone = ev.all_distributions(today=TODAY, dimensions=_dims())
            results.append((pv.counts, pv.before, pv.after, pv.entering, pv.leaving, everyone))
    assert results[1] == results[0]
    assert results[2] == results[0]


def _dims() -> tuple[str, ...]:
    from segcore._stats import DIMENSIONS

    return tuple(DIMENSIONS)


@pytest.mark.parametrize("dimension", ["country", "industry_groups", "age_band", "spend_band"])
def test_a_lone_chart_split_by_contacts_sums_back(demo: Database, dimension: str) -> None:
    got = []
    for count, min_rows in ((1, None), (2, 1)):
        clear_caches()
        with threads(count, min_rows=min_rows):
            got.append(evaluator_for(demo, backend="memory").segment_distributions("BASE", today=TODAY,
                                                                                   dimensions=(dimension,)))  # fmt: skip
    assert got[0] == got[1]
    assert got[0][dimension].total > 0
