"""The in-memory snapshot: the Arrow (ADBC) read of an SQLite file gives exactly the snapshot the driver read gives,
custom fields included, and is never used when the data changed while it read."""

from __future__ import annotations

import numpy as np
import pytest

import segcore._snapshot as snapshot
from segcore import Database, import_contacts
from segcore._demo import load_demo
from segcore._snapshot import _assemble, _fetch, _fetch_arrow, data_version


@pytest.fixture
def demo(sqlite_db: Database) -> Database:
    load_demo(sqlite_db, 3_000, seed=5)
    import_contacts(
        sqlite_db,
        b"contact_no,Tier,Points,Since,Vip,Tags\nCT000001,GOLD,12.5,2021-01-02,yes,A;B\nCT000002,,3,,no,\n",
        mapping={"columns": {"contact_no": "contact_no", "Tier": {"field": "tier", "type": "code"},
                             "Points": {"field": "points", "type": "number"}, "Since": {"field": "since", "type": "date"},
                             "Vip": {"field": "vip", "type": "boolean"}, "Tags": {"field": "tags", "type": "list"}}},
    )  # fmt: skip
    return sqlite_db


def test_the_arrow_read_equals_the_driver_read(demo: Database) -> None:
    path = demo.engine.url.database
    assert path
    with demo.read() as conn:
        version = data_version(conn)
        reference = _assemble(_fetch(conn), version)
    # The Arrow read falls back to the driver on any trouble (a busy file under a loaded machine): give it a few
    # chances, and say why when it never works.
    reasons = []
    tables = None
    for _ in range(3):
        tables = _fetch_arrow(path, version)
        if tables is not None:
            break
        reasons.append(list(snapshot._last_arrow_failure))
    assert tables is not None, reasons
    fast = _assemble(tables, version)
    assert fast.n == reference.n == 3_000
    assert {s.name for s in fast.fields.custom} >= {"tier", "tags"}
    _assert_same(fast, reference)


def _assert_same(fast: snapshot.Snapshot, reference: snapshot.Snapshot) -> None:
    assert np.array_equal(fast.ids, reference.ids)
    assert fast.fields.key == reference.fields.key
    for name, arr in reference.numbers.items():
        assert np.array_equal(fast.numbers[name], arr, equal_nan=True), name
    for name, arr in reference.dates.items():
        assert np.array_equal(fast.dates[name], arr), name
    for name, col in reference.text.items():
        assert np.array_equal(fast.text[name].codes, col.codes) and fast.text[name].values.equals(col.values), name
    for name, pairs in reference.lists.items():
        # The same (contact, code) pairs; their order means nothing (the Arrow read takes them in key order).
        assert _pairs(fast.lists[name]) == _pairs(pairs), name
    assert np.array_equal(fast.excluded, reference.excluded) and np.array_equal(fast.org_pos, reference.org_pos)
    assert np.array_equal(fast.interactions.pos, reference.interactions.pos)
    assert np.array_equal(fast.profile.pos, reference.profile.pos)


def test_the_driver_read_in_slices_equals_one_read(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # The driver read goes slice by slice (a server-side cursor on PostgreSQL) so that ten million contacts never
    # sit in memory as Python tuples; slices of 7 rows have columns that are all NULL in some slices and not others.
    load_demo(db, 400, seed=3)
    import_contacts(
        db,
        b"contact_no,Tier,Points\nCT000001,GOLD,12.5\nCT000002,,3\n",
        mapping={"columns": {"contact_no": "contact_no", "Tier": {"field": "tier", "type": "code"},
                             "Points": {"field": "points", "type": "number"}}},
    )  # fmt: skip
    with db.read() as conn:
        version = data_version(conn)
        whole = _assemble(_fetch(conn), version)
    monkeypatch.setattr(snapshot, "_FETCH_ROWS", 7)
    with db.read() as conn:
        sliced = _assemble(_fetch(conn), version)
    assert sliced.n == whole.n == 400
    _assert_same(sliced, whole)


def _pairs(pairs: snapshot.Pairs) -> list[tuple[int, str]]:
    code = pairs.cols["code"]
    values = code.values.to_pylist()
    return sorted((int(p), values[c] if c >= 0 else "") for p, c in zip(pairs.pos, code.codes, strict=True))


def test_a_changed_data_version_is_not_used(demo: Database) -> None:
    path = demo.engine.url.database
    assert path and _fetch_arrow(path, "not-the-current-version") is None


def test_free_text_columns_are_folded_codes_and_emails_lower_cased(demo: Database) -> None:
    import pyarrow as pa
    from sqlalchemy import select

    from segcore._fold import fold
    from segcore._models import Contact
    from segcore._snapshot import StrColumn

    col = StrColumn.encode(pa.array(["Lefèvre", "LEFEVRE", "\u0301", "", None, "Zürich"]), folded=True)
    values = col.values.to_pylist()
    # Folded together; a value of accents alone folds to '' yet is not empty (SQL tests the stored value).
    assert [values[c] if c >= 0 else None for c in col.codes] == ["lefevre", "lefevre", "", None, None, "zurich"]
    col = StrColumn.encode(pa.array(["Zoë@X.org", "ZOË@x.ORG"]))
    assert not col.folded and col.values.to_pylist() == ["zoë@x.org"]
    with demo.read() as conn:
        snap = _assemble(_fetch(conn), data_version(conn))
        names = [n for n in conn.execute(select(Contact.name)).scalars() if n]
        emails = [e for e in conn.execute(select(Contact.email)).scalars() if e]
    assert snap.text["name"].folded and set(snap.text["name"].values.to_pylist()) == {fold(n) for n in names}
    assert any(fold(n) != n.lower() for n in names)  # the demo has accented names
    assert not snap.text["email"].folded and set(snap.text["email"].values.to_pylist()) == {e.lower() for e in emails}
    assert not snap.text["country"].folded and snap.text["city"].folded
    assert snap.interactions.cols["campaign_no"].folded and not snap.interactions.cols["template"].folded


def test_the_sqlite_copy_of_the_arrow_driver_never_loads_in_this_process(demo: Database) -> None:
    # Two copies of SQLite in one process break each other's file locks (sqlite.org/howtocorrupt.html): the driver,
    # which carries its own, reads in a child process.
    import sys
    from pathlib import Path

    path = demo.engine.url.database
    assert path
    with demo.read() as conn:
        version = data_version(conn)
    assert _fetch_arrow(path, version) is not None, snapshot._last_arrow_failure
    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    assert "libadbc_driver_sqlite" not in maps
    assert "adbc_driver_sqlite.dbapi" not in sys.modules
