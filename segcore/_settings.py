"""Settings a user may change: each one's meaning, bounds and default, read and written in one place.

The values live in the `settings` table (one JSON value per key). Readers that already hold a connection call
`read_setting(conn, key)` so the value comes from their own transaction; pages and the CLI use `settings_of(db)`
and `set_setting(db, key, value)`, which validates against the registry (`_setting_specs`) before anything is
written, and, once accounts exist, needs an administrator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import update

from ._setting_specs import DEFAULT_SETTINGS, SETTINGS, SettingSpec, Store, _spec, read_setting, settings_t
from .auth.audit import record
from .auth.identity import current_user
from .auth.roles import require

__all__ = [
    "DEFAULT_SETTINGS",
    "SETTINGS",
    "SettingSpec",
    "Store",
    "read_setting",
    "set_setting",
    "set_settings",
    "settings_of",
]


def settings_of(db: Store) -> dict[str, int]:
    """Every setting's current value, by key."""
    with db.read() as conn:
        return {key: read_setting(conn, key) for key in SETTINGS}


def set_settings(db: Store, values: Mapping[str, Any], *, user: str | None = None) -> dict[str, int]:
    """Validate every value first, then store them all in one transaction (an administrator's); returns the values."""
    checked = {key: _spec(key).check(value) for key, value in values.items()}
    user = user if user is not None else current_user()
    with db.write() as conn:
        require(conn, user, "settings")
        for key, number in checked.items():
            before = read_setting(conn, key)
            done = conn.execute(update(settings_t).where(settings_t.c.key == key).values(value=number)).rowcount
            if not done:
                conn.execute(settings_t.insert().values(key=key, value=number))
            if before != number:
                record(conn, user, "setting.set", f"setting {key}", f"{key} changed", before=f"{before:,}",
                       after=f"{number:,}")
    return checked


def set_setting(db: Store, key: str, value: Any, *, user: str | None = None) -> int:
    """Validate and store one setting; returns the stored value."""
    return set_settings(db, {key: value}, user=user)[key]
