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


# ------------------------------------------------------------------------------------------------- bucket order


def test_ordered_dimensions_declare_their_order() -> None:
    from segcore._stats import DIMENSIONS, SPEND_BANDS, UNKNOWN, dimension_of

    age, spend = DIMENSIONS["age_band"], DIMENSIONS["spend_band"]
    assert age.ordered and spend.ordered and DIMENSIONS["churn_risk"].ordered
    assert not DIMENSIONS["country"].ordered and not DIMENSIONS["industry_groups"].ordered
    # Whatever order the buckets come in (here the reverse, "not set" first), a chart gets them in theirs.
    bands = ["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
    assert age.arrange([UNKNOWN, *reversed(bands)]) == [*bands, UNKNOWN]
    spends = [b[0] for b in SPEND_BANDS]
    assert spend.arrange({UNKNOWN: 9, **{b: i for i, b in enumerate(reversed(spends))}}) == [*spends, UNKNOWN]
    # Years, number bands and yes/no of any date, number or boolean field (built-in or custom).
    assert dimension_of("birth_date").ordered and dimension_of("purchase_count").ordered
    years = dimension_of("birth_date")
    assert years.arrange({"2001": 1, UNKNOWN: 50, "1999": 2, "2000": 30}) == ["1999", "2000", "2001", UNKNOWN]
    bands10 = dimension_of("purchase_count")
    assert bands10.arrange(["10–100", UNKNOWN, "1,000–10,000", "0", "100–1,000", "< 0", "0–1", "1–10"]) == [
        "< 0", "0", "0–1", "1–10", "10–100", "100–1,000", "1,000–10,000", UNKNOWN,
    ]  # fmt: skip
    assert dimension_of("exclude_from_segments").arrange({"no": 5, "yes": 1}) == ["yes", "no"]


def test_unordered_dimensions_are_largest_first_with_not_set_last() -> None:
    from segcore._stats import DIMENSIONS, UNKNOWN

    country = DIMENSIONS["country"]
    assert country.arrange({UNKNOWN: 900, "DE": 5, "FR": 50, "AT": 5}) == ["FR", "AT", "DE", UNKNOWN]
    # A bucket an ordered dimension does not know goes after the known ones, "not set" still last.
    assert DIMENSIONS["churn_risk"].arrange([UNKNOWN, "odd", "high", "low"]) == ["low", "high", "odd", UNKNOWN]


def test_a_code_field_of_digits_is_not_taken_for_years(db) -> None:  # noqa: ANN001 - the conftest fixture
    """A custom code field whose codes are four digits (store numbers) is drawn largest first, as codes are: the
    core asks the field's type, it does not guess years from the look of the buckets."""
    import sqlalchemy as sa

    from segcore._models import Contact, CustomValue
    from segcore._snapshot import bump_data_version
    from segcore._stats import dimension_of, distribution_sql
    from segcore.fields import fields_of
    from segcore.fields.custom import create_custom_field
    from tests.factories import add_contacts, person

    ids = add_contacts(db, [person(f"P{i}") for i in range(6)])
    stores = ["2040", "2040", "2040", "1001", "3300", "3300"]
    with db.write() as conn:
        fid = create_custom_field(conn, "store", "Store", "code")
        conn.execute(
            sa.insert(CustomValue.__table__),
            [{"field_id": fid, "contact_id": ids[f"P{i}"], "txt": s} for i, s in enumerate(stores)],
        )
        bump_data_version(conn)
    with db.read() as conn:
        dist = distribution_sql(conn, sa.select(Contact.__table__.c.id), "store")
    assert list(dist.counts) == ["2040", "3300", "1001"]
    assert not dimension_of("store", fields_of(db)).ordered
