"""Chart statistics that have rules of their own: hiding small buckets, and composition's index."""

from __future__ import annotations

import pytest

from segcore._stats import Distribution, composition, mask_small


@pytest.mark.parametrize(
    "counts, minimum, kept, hidden",
    [
        ({"FR": 60, "DE": 49, "NL": 50}, 50, {"FR": 60, "NL": 50}, 49),  # just under / at the minimum
        ({"FR": 3, "DE": 2}, 50, {}, 5),  # everything hidden
        ({"FR": 60}, 1, {"FR": 60}, 0),  # nothing to hide
        ({}, 50, {}, 0),  # empty
    ],
)
def test_mask_small(counts: dict[str, int], minimum: int, kept: dict[str, int], hidden: int) -> None:
    total = sum(counts.values())
    masked = mask_small(Distribution("country", counts, total), minimum)
    assert (masked.counts, masked.total, masked.hidden) == (kept, total, hidden)
    # Shares of what is shown stay shares of the true total.
    for bucket, n in kept.items():
        assert masked.share(bucket) == n / total


def test_mask_small_on_a_multi_valued_dimension_counts_memberships() -> None:
    # 10 contacts, some in two industry groups: hidden counts memberships, total stays the contacts.
    d = Distribution("industry_groups", {"RETAIL": 8, "FOOD": 3, "(none)": 1}, 10)
    masked = mask_small(d, 5)
    assert (masked.counts, masked.total, masked.hidden) == ({"RETAIL": 8}, 10, 4)


def test_composition_index_by_hand() -> None:
    segment = Distribution("country", {"FR": 30, "DE": 10}, 40)
    everyone = Distribution("country", {"FR": 100, "DE": 100, "NL": 200}, 400)
    rows = {r["bucket"]: r for r in composition(segment, everyone)}
    # FR: 75 % of the segment, 25 % of all -> index 300; DE: 25 % vs 25 % -> 100; NL absent -> 0.
    assert (rows["FR"]["segment_share"], rows["FR"]["all_share"], rows["FR"]["index"]) == (0.75, 0.25, 300.0)
    assert rows["DE"]["index"] == 100.0
    assert (rows["NL"]["segment_count"], rows["NL"]["index"]) == (0, 0.0)
