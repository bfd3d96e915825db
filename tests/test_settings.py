"""Settings: the registry's bounds, storage in one transaction, and the readers that follow a change."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from segcore import Database, UsageError
from segcore._browse import minimum_segment_size
from segcore._engine import ActionRequest, apply_action, create_segment
from segcore._filter_text import parse_text
from segcore._lifecycle import segment_is_small
from segcore._models import Setting, table_of
from segcore._settings import SETTINGS, read_setting, set_setting, set_settings, settings_of
from tests.factories import add_contacts, person


def test_a_new_database_has_the_defaults(db: Database) -> None:
    assert settings_of(db) == {
        "minimum_segment_size": 50, "preview_memory_max_contacts": 10_000_000, "log_requires_approval": 0,
        "four_eyes": 1, "lockout_failures": 5, "lockout_minutes": 15, "session_idle_minutes": 60}


@pytest.mark.parametrize(
    "key, value, stored",
    [
        ("minimum_segment_size", 1, 1),
        ("minimum_segment_size", "200", 200),
        ("minimum_segment_size", " 1,000 ", 1000),
        ("preview_memory_max_contacts", 0, 0),
        ("preview_memory_max_contacts", "2_000_000", 2_000_000),
        ("log_requires_approval", "yes", 1),
        ("log_requires_approval", "Off", 0),
        ("log_requires_approval", True, 1),
    ],
)
def test_set_stores_the_checked_value(db: Database, key: str, value: object, stored: int) -> None:
    assert set_setting(db, key, value) == stored
    assert settings_of(db)[key] == stored


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("minimum_segment_size", 0, "between 1 and"),
        ("minimum_segment_size", -5, "between 1 and"),
        ("minimum_segment_size", "ten", "whole number"),
        ("minimum_segment_size", "2.5", "whole number"),
        ("preview_memory_max_contacts", -1, "between 0 and"),
        ("log_requires_approval", 2, "between 0 and 1"),
        ("log_requires_approval", "maybe", "whole number"),
        ("no_such_setting", 3, "unknown setting"),
    ],
)
def test_bad_values_are_refused_and_nothing_changes(db: Database, key: str, value: object, message: str) -> None:
    before = settings_of(db)
    with pytest.raises(UsageError, match=message):
        set_setting(db, key, value)
    assert settings_of(db) == before


def test_several_at_once_is_all_or_nothing(db: Database) -> None:
    with pytest.raises(UsageError, match="preview_memory_max_contacts"):
        set_settings(db, {"minimum_segment_size": 10, "preview_memory_max_contacts": -1})
    assert settings_of(db)["minimum_segment_size"] == 50
    assert set_settings(db, {"minimum_segment_size": 10, "preview_memory_max_contacts": 0}) == {
        "minimum_segment_size": 10, "preview_memory_max_contacts": 0}
    assert {k: v for k, v in settings_of(db).items() if k in ("minimum_segment_size", "preview_memory_max_contacts")} == {
        "minimum_segment_size": 10, "preview_memory_max_contacts": 0}


def test_a_missing_row_is_inserted(db: Database) -> None:
    with db.write() as conn:
        conn.execute(table_of(Setting).delete())
    assert settings_of(db)["minimum_segment_size"] == SETTINGS["minimum_segment_size"].default
    set_setting(db, "minimum_segment_size", 7)
    assert minimum_segment_size(db) == 7


def test_a_value_stored_out_of_bounds_reads_as_the_default(db: Database) -> None:
    with db.write() as conn:
        conn.execute(update(table_of(Setting)).where(Setting.key == "minimum_segment_size").values(value="x"))
        assert read_setting(conn, "minimum_segment_size") == 50


def test_the_small_flag_follows_the_setting(db: Database) -> None:
    add_contacts(db, [person(f"P{i}", country="FR") for i in range(10)])
    create_segment(db, "S", description="ten")
    apply_action(db, "S", ActionRequest("add", parse_text(["country=FR"])))
    assert segment_is_small(db, "S")
    set_setting(db, "minimum_segment_size", 10)
    assert not segment_is_small(db, "S")
    set_setting(db, "minimum_segment_size", 11)
    assert segment_is_small(db, "S")
