"""The settings' registry (meaning, bounds, default of each) and the reader that needs only a connection.

Kept apart from `_settings` (which writes them, with a permission check and an audit row) so that the database
module, which seeds the defaults, and the auth package, which reads the lock-out and four-eyes settings, can import
it without importing the writers, and so without an import circle.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, select

from ._errors import UsageError
from ._models import Setting, table_of

__all__ = ["DEFAULT_SETTINGS", "SETTINGS", "SettingSpec", "Store", "read_setting"]

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
            # 10M: the snapshot is about 2 GB, the build peaks near 7 GB of RSS (bench.scale, README), which a
            # machine serving ten million contacts has; beyond it previews run in the database.
            "preview_memory_max_contacts", "In-memory previews up to (contacts)", 10_000_000, 0, 1_000_000_000,
            "up to this many contacts previews run on the in-memory snapshot; beyond it every preview is pushed "
            "down to the database (0: always in the database)",
        ),
        SettingSpec(
            "log_requires_approval", "Logging needs a manager's approval", 0, 0, 1,
            "when on (1), only an approved segment can be logged; when off (0), a draft can be logged too, as in "
            "Business Central",
        ),
        SettingSpec(
            "four_eyes", "Four-eyes approval", 1, 0, 1,
            "when on (1), nobody approves a segment they submitted or changed since its last approval; another "
            "manager must (applies once accounts exist)",
        ),
        SettingSpec(
            "lockout_failures", "Wrong passwords before a lock-out", 5, 1, 100,
            "this many wrong passwords in a row lock the account for the lock-out time",
        ),
        SettingSpec(
            "lockout_minutes", "Lock-out time (minutes)", 15, 1, 10_080,
            "how long an account stays locked after too many wrong passwords",
        ),
        SettingSpec(
            "session_idle_minutes", "Sign-out after idle time (minutes)", 60, 1, 10_080,
            "a dashboard session without activity for this long must sign in again",
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
