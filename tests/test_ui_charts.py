"""The charts' figures as Plotly gets them (AppTest cannot look inside a Plotly chart): bucket order told to Plotly
outright, "Not set" last and never folded away, an index label on every composition bar with room above the tallest.
"""

from __future__ import annotations

import random

import pytest

from segcore import DIMENSIONS, SPEND_BANDS, UNKNOWN, Distribution, composition, dimension_of
from ui.charts import AFTER_NAME, BEFORE_NAME, MAX_BARS, distribution_figure
from ui.review_charts import composition_figure

AGES = ["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
SPENDS = [b[0] for b in SPEND_BANDS]


def shuffled(counts: dict[str, int], seed: int) -> dict[str, int]:
    keys = list(counts)
    random.Random(seed).shuffle(keys)
    return {k: counts[k] for k in keys}


def dist(dimension: str, counts: dict[str, int]) -> Distribution:
    return Distribution(dimension, counts, sum(counts.values()))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("dimension", "buckets", "shown"),
    [
        ("age_band", [*AGES, UNKNOWN], [*AGES, "Not set"]),
        ("spend_band", [*SPENDS, UNKNOWN], [*SPENDS, "Not set"]),
        ("churn_risk", ["low", "medium", "high", UNKNOWN], ["Low", "Medium", "High", "Not set"]),
        ("birth_date", ["1958", "1971", "1990", "2004", UNKNOWN], ["1958", "1971", "1990", "2004", "Not set"]),
        ("purchase_count", ["0", "1–10", "10–100", "100–1,000"], ["0", "1–10", "10–100", "100–1k"]),
    ],
)
def test_builder_charts_keep_an_ordered_dimension_in_order(
    dimension: str, buckets: list[str], shown: list[str], seed: int
) -> None:
    # Counts that would sort otherwise (largest first), in a scrambled order, "now" missing a bucket "after" has.
    counts = shuffled({b: 10 + (i * 37) % 11 for i, b in enumerate(buckets)}, seed)
    now = dist(dimension, {k: v for k, v in counts.items() if k != buckets[1]})
    fig = distribution_figure(dimension, {BEFORE_NAME: now, AFTER_NAME: dist(dimension, counts)})
    # The order is told to Plotly, not left to its category rules; both series draw the same buckets.
    assert fig.layout.yaxis.categoryorder == "array"
    assert list(fig.layout.yaxis.categoryarray) == shown
    assert list(fig.data[0].y) == list(fig.data[1].y) == shown
    assert fig.layout.yaxis.autorange == "reversed"  # the first bucket on top
    # A segment's composition (one series, "now") too.
    fig = distribution_figure(dimension, {BEFORE_NAME: dist(dimension, counts)})
    assert list(fig.layout.yaxis.categoryarray) == shown


def test_builder_chart_keeps_not_set_as_its_own_last_bar() -> None:
    # Thirteen countries and many contacts without one: the tail folds, "Not set" does not vanish into it.
    counts = {f"C{i:02d}": 100 - i for i in range(13)} | {UNKNOWN: 5}
    now = dist("country", shuffled(counts, 1))
    fig = distribution_figure("country", {BEFORE_NAME: now})
    labels = list(fig.layout.yaxis.categoryarray)
    assert len(labels) == MAX_BARS
    assert labels[-2:] == ["5 others", "Not set"]
    assert labels[:8] == [f"C{i:02d}" for i in range(8)]
    values = dict(zip(fig.data[0].y, fig.data[0].x, strict=True))
    assert values["Not set"] == 5 and values["5 others"] == sum(100 - i for i in range(8, 13))
    # A bucket literally named "Other" is not confused with the folded tail.
    counts = {f"C{i:02d}": 100 - i for i in range(12)} | {"other": 1}
    fig = distribution_figure("acquisition_source", {BEFORE_NAME: dist("acquisition_source", counts)})
    labels = list(fig.layout.yaxis.categoryarray)
    assert len(set(labels)) == len(labels) and labels[-1] == "4 others"


def _rows(dimension: str, all_counts: dict[str, int], seg_counts: dict[str, int]) -> list[dict[str, object]]:
    return composition(dist(dimension, seg_counts), dist(dimension, all_counts))


@pytest.mark.parametrize("seed", range(5))
def test_review_composition_keeps_age_and_spend_bands_in_order(seed: int) -> None:
    for dimension, buckets, shown in (
        ("age_band", [*AGES, UNKNOWN], [*AGES, "Not set"]),
        ("spend_band", [*SPENDS, UNKNOWN], [*SPENDS, "Not set"]),
    ):
        everyone = shuffled({b: 100 + (i * 53) % 17 for i, b in enumerate(buckets)}, seed)
        segment = shuffled({b: 10 + (i * 29) % 13 for i, b in enumerate(buckets)}, seed + 1)
        fig = composition_figure("Bands", _rows(dimension, everyone, segment), segment_name="S",
                                 dimension=DIMENSIONS[dimension])
        assert fig.layout.xaxis.categoryorder == "array"
        assert list(fig.layout.xaxis.categoryarray) == shown
        assert list(fig.data[0].x) == list(fig.data[1].x) == shown


def test_review_composition_draws_every_year_and_not_set_last() -> None:
    years = [str(y) for y in range(1930, 2011)]  # 81 birth years
    everyone = {y: 3 for y in years} | {UNKNOWN: 400}
    segment = {y: 1 for y in years} | {UNKNOWN: 40}
    fig = composition_figure("Birth date", _rows("birth_date", everyone, segment), segment_name="S",
                             dimension=dimension_of("birth_date"))
    assert list(fig.layout.xaxis.categoryarray) == [*years, "Not set"]


def test_review_composition_keeps_not_set_among_many_codes() -> None:
    everyone = {f"C{i:02d}": 100 - i for i in range(14)} | {UNKNOWN: 3}
    segment = {f"C{i:02d}": 10 for i in range(14)} | {UNKNOWN: 1}
    fig = composition_figure("Country", _rows("country", everyone, segment), segment_name="S",
                             dimension=DIMENSIONS["country"])
    labels = list(fig.layout.xaxis.categoryarray)
    assert len(labels) == 10 and labels[-1] == "Not set"
    assert labels[:9] == [f"C{i:02d}" for i in range(9)]


@pytest.mark.parametrize("n", [2, 4, 11, 30])
def test_every_composition_bar_has_its_index_label_the_tallest_included(n: int) -> None:
    # One bucket holds nearly the whole segment (index far above 100, the tallest bar): its label must show too.
    everyone = {f"C{i:02d}": 100 for i in range(n)}
    segment = {"C00": 970} | {f"C{i:02d}": 1 for i in range(1, n)}
    rows = _rows("country", everyone, segment)
    fig = composition_figure("Country", rows, segment_name="S", dimension=DIMENSIONS["country"])
    bars = fig.data[1]
    assert len(bars.text) == len(bars.x) and all(bars.text)
    assert bars.text[0] == f"{970 / (970 + n - 1) * n * 100:.0f}"
    # Outside the bar, never shrunk to the bar's width nor hidden, drawn past the plot's edge if need be.
    assert bars.textposition == "outside"
    assert bars.constraintext == "none" and bars.cliponaxis is False
    assert fig.layout.uniformtext.mode in (None, "show")
    assert bars.textangle in (0, -90)
    # And the value axis leaves room above the tallest bar for its label.
    tallest = max([*bars.y, *fig.data[0].y])
    low, high = fig.layout.yaxis.range
    assert low == 0 and high >= tallest * 1.2


def test_hover_texts_count_in_the_singular_for_one() -> None:
    from ui.review_charts import overlap_figure

    fig = distribution_figure("country", {BEFORE_NAME: dist("country", {"FR": 1, "DE": 2})})
    assert list(fig.data[0].customdata) == ["2 contacts", "1 contact"]
    assert "%{customdata}" in fig.data[0].hovertemplate and "contacts" not in fig.data[0].hovertemplate
    fig = overlap_figure(["A", "B"], [[1, 1], [1, 3]], mode="count")
    assert [list(r) for r in fig.data[0].customdata] == [
        ["1 member in both", "1 member in both"], ["1 member in both", "3 members in both"],
    ]  # fmt: skip
    assert "members" not in fig.data[0].hovertemplate
