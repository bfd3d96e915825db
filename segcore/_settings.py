"""Settings a user may change: each one's meaning, bounds and default, read and written in one place.

The values live in the `settings` table (one JSON value per key). Readers that already hold a connection call
`read_setting(conn, key)` so the value comes from their own transaction; pages and the CLI use `settings_of(db)`
and `set_setting(db, key, value)`, which validates against the registry below before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, select, update

from ._errors import UsageError
from ._models import Setting, table_of

__all__ = [
    "DEFAULT_SETTINGS",
    "SETTINGS",
    "SettingSpec",
    "read_setting",
    "set_setting",
    "set_settings",
    "settings_of",
]



class Store(Protocol):
    """What the settings need of a database: a read and a write transaction (`Database` is one)."""

    # A protocol rather than `_db.Database`: _db seeds these defaults, so importing it back would make a circle.
    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...

settings_t = table_of(Setting)


@dataclass(frozen=True)
class SettingSpec:
    """One whole-number setting (0/1 for a switch): its key, default, inclusive bounds and what it does."""

    key: str
    label: str
    default: int
    minimum: int
    maximum: int
    help: str

    @property
    def switch(self) -> bool:
        """A yes/no setting, stored as 0 or 1."""
        return (self.minimum, self.maximum) == (0, 1)

    def check(self, value: Any) -> int:
        """The value as an int within bounds, or a UsageError that says what is allowed."""
        text = str(value).strip().lower()
        if self.switch and text in _SWITCH_WORDS:
            return _SWITCH_WORDS[text]
        try:
            number = int(text.replace(",", "").replace("_", ""))
        except ValueError:
            raise UsageError(f"{self.key} must be a whole number, not {value!r}") from None
        if not self.minimum <= number <= self.maximum:
            raise UsageError(f"{self.key} must be between {self.minimum:,} and {self.maximum:,}, not {number:,}")
        return number


_SWITCH_WORDS = {"true": 1, "yes": 1, "on": 1, "false": 0, "no": 0, "off": 0}

SETTINGS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec(
            "minimum_segment_size", "Minimum segment size", 50, 1, 1_000_000,
            "a segment with fewer members is flagged small: it cannot be exported or logged, and its charts hide "
            "buckets under this size",
        ),
        SettingSpec(
            "preview_memory_max_contacts", "In-memory previews up to (contacts)", 5_000_000, 0, 1_000_000_000,
            "up to this many contacts previews run on the in-memory snapshot; beyond it every preview is pushed "
            "down to the database (0: always in the database)",
        ),
        SettingSpec(
            "log_requires_approval", "Logging needs a manager's approval", 0, 0, 1,
            "when on (1), only an approved segment can be logged; when off (0), a draft can be logged too, as in "
            "Business Central",
        ),
    )
}

# What a new database starts with (preview_memory_max_contacts stays unset: its default applies).
DEFAULT_SETTINGS: dict[str, Any] = {"minimum_segment_size": SETTINGS["minimum_segment_size"].default}


def _spec(key: str) -> SettingSpec:
    try:
        return SETTINGS[key]
    except KeyError:
        raise UsageError(f"unknown setting {key!r}; settings are: {', '.join(sorted(SETTINGS))}") from None


def read_setting(conn: Connection, key: str) -> int:
    """The setting's value in the caller's transaction, or its default when unset or unreadable."""
    spec = _spec(key)
    value = conn.execute(select(settings_t.c.value).where(settings_t.c.key == key)).scalar()
    try:
        return spec.check(value) if value is not None else spec.default
    except UsageError:
        return spec.default  # a value stored by hand out of bounds must not break every page


def settings_of(db: Store) -> dict[str, int]:
    """Every setting's current value, by key."""
    with db.read() as conn:
        return {key: read_setting(conn, key) for key in SETTINGS}


def set_settings(db: Store, values: Mapping[str, Any]) -> dict[str, int]:
    """Validate every value first, then store them all in one transaction; returns the stored values."""
    checked = {key: _spec(key).check(value) for key, value in values.items()}
    with db.write() as conn:
        for key, number in checked.items():
            done = conn.execute(update(settings_t).where(settings_t.c.key == key).values(value=number)).rowcount
            if not done:
                conn.execute(settings_t.insert().values(key=key, value=number))
    return checked


def set_setting(db: Store, key: str, value: Any) -> int:
    """Validate and store one setting; returns the stored value."""
    return set_settings(db, {key: value})[key]
