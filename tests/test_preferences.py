"""Per-user preferences (issue 13): validated against a registry, stored per user in the settings table, on
SQLite and PostgreSQL, without disturbing the settings themselves."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from segcore import (
    PREFERENCES,
    Database,
    UsageError,
    get_preference,
    preferences_of,
    set_preference,
    settings_of,
)
from segcore._models import Setting, table_of
from segcore._preferences import storage_key


def test_defaults_then_each_user_keeps_their_own(db: Database) -> None:
    assert preferences_of(db, "ann") == {"add_contact_type": "both", "date_order": "DMY"}
    assert set_preference(db, "ann", "add_contact_type", "person") == "person"
    assert set_preference(db, "ann", "date_order", "mdy") == "MDY"  # case-insensitive, stored as registered
    assert get_preference(db, "ann", "add_contact_type") == "person"
    assert get_preference(db, "bob", "add_contact_type") == "both"
    # Setting it again replaces the value (one row per user and key).
    set_preference(db, "ann", "add_contact_type", "company")
    assert get_preference(db, "ann", "add_contact_type") == "company"
    settings = table_of(Setting)
    with db.read() as conn:
        rows = conn.execute(select(func.count()).where(settings.c.key.like("pref.%"))).scalar_one()
    assert rows == 2


def test_only_registered_keys_and_values(db: Database) -> None:
    with pytest.raises(UsageError, match="unknown preference"):
        set_preference(db, "ann", "colour", "blue")
    with pytest.raises(UsageError, match="add_contact_type must be one of both, person, company"):
        set_preference(db, "ann", "add_contact_type", "robots")
    with pytest.raises(UsageError, match="user"):
        set_preference(db, "  ", "date_order", "DMY")
    assert get_preference(db, "ann", "add_contact_type") == "both"  # nothing was written
    assert set(PREFERENCES) == {"add_contact_type", "date_order"}


def test_settings_listing_ignores_preference_rows(db: Database) -> None:
    before = settings_of(db)
    set_preference(db, "ann", "date_order", "YMD")
    assert settings_of(db) == before


def test_long_user_names_fit_the_key_column(db: Database) -> None:
    long_a, long_b = "a" * 59 + "x", "a" * 59 + "y"
    assert len(storage_key(long_a, "add_contact_type")) <= 60
    assert storage_key(long_a, "add_contact_type") != storage_key(long_b, "add_contact_type")
    set_preference(db, long_a, "add_contact_type", "person")
    assert get_preference(db, long_a, "add_contact_type") == "person"
    assert get_preference(db, long_b, "add_contact_type") == "both"


def test_a_row_edited_by_hand_falls_back_to_the_default(db: Database) -> None:
    set_preference(db, "ann", "date_order", "MDY")
    settings = table_of(Setting)
    with db.write() as conn:
        conn.execute(settings.update().where(settings.c.key == storage_key("ann", "date_order")).values(value="nonsense"))
    assert get_preference(db, "ann", "date_order") == "DMY"
