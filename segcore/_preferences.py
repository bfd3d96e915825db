"""Per-user preferences: small choices the dashboard and the CLI remember for each person who works.

Each preference has a registry entry below (its allowed values and default); `set_preference` refuses anything
else. They live in the existing `settings` table, one row per user and key, under the namespaced key
`pref.<user>.<key>` (a hash stands in for a name too long for the 60-character key column), so no schema change is
needed. That is safe because every reader of `settings` asks for the keys it knows: `settings_of` and
`read_setting` (settings show, the Data page) iterate the SETTINGS registry, and the snapshot reads its one
`data_version` key; no code lists the table's rows, so these extra rows are never shown or read as settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ._errors import UsageError
from ._models import Setting, table_of
from ._settings import Store
from .auth.audit import record
from .auth.roles import require

__all__ = ["PREFERENCES", "PreferenceSpec", "get_preference", "preferences_of", "set_preference"]

settings_t = table_of(Setting)
PREFIX = "pref."
_KEY_LENGTH = 60  # settings.key is String(60)
MAX_USER = 60


@dataclass(frozen=True)
class PreferenceSpec:
    """One preference: its key, allowed values (the first is the default) and what it does."""

    key: str
    values: tuple[str, ...]
    help: str

    @property
    def default(self) -> str:
        return self.values[0]

    def check(self, value: Any) -> str:
        text = str(value if value is not None else "").strip()
        for allowed in self.values:
            if text.lower() == allowed.lower():
                return allowed
        raise UsageError(f"{self.key} must be one of {', '.join(self.values)}, not {value!r}")


PREFERENCES: dict[str, PreferenceSpec] = {
    spec.key: spec
    for spec in (
        PreferenceSpec("add_contact_type", ("both", "person", "company"),
                       "which contacts an Add takes by default: persons and companies (Business Central), persons "
                       "only or companies only"),
        PreferenceSpec("date_order", ("DMY", "MDY", "YMD"),
                       "how short dates typed in a filter (311225, 31/12/25) are read"),
    )
}


def _spec(key: str) -> PreferenceSpec:
    try:
        return PREFERENCES[key]
    except KeyError:
        raise UsageError(f"unknown preference {key!r}; preferences are: {', '.join(sorted(PREFERENCES))}") from None


def _user(user: str) -> str:
    name = (user or "").strip()
    if not name:
        raise UsageError("a preference belongs to a user: give a user name")
    if len(name) > MAX_USER:
        raise UsageError(f"a user name is at most {MAX_USER} characters")
    return name


def storage_key(user: str, key: str) -> str:
    """The settings row of one user's preference: `pref.<user>.<key>`, or a hash of the user when that is too long."""
    name = _user(user)
    spec = _spec(key)
    plain = f"{PREFIX}{name}.{spec.key}"
    if len(plain) <= _KEY_LENGTH:
        return plain
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[: _KEY_LENGTH - len(PREFIX) - len(spec.key) - 3]
    return f"{PREFIX}#{digest}.{spec.key}"


def _read(conn: Connection, user: str, key: str) -> str:
    spec = _spec(key)
    value = conn.execute(select(settings_t.c.value).where(settings_t.c.key == storage_key(user, key))).scalar()
    try:
        return spec.check(value) if value is not None else spec.default
    except UsageError:
        return spec.default  # a row edited by hand into nonsense must not break a page


def get_preference(db: Store, user: str, key: str) -> str:
    """The user's value of a preference, or its default when the user never chose one."""
    with db.read() as conn:
        return _read(conn, user, key)


def preferences_of(db: Store, user: str) -> dict[str, str]:
    """Every preference of a user, by key (defaults included)."""
    with db.read() as conn:
        return {key: _read(conn, user, key) for key in PREFERENCES}


def set_preference(db: Store, user: str, key: str, value: Any) -> str:
    """Validate and store one preference of a user in one transaction; returns the stored value.

    Once accounts exist, `user` must be an enabled account: a person saves their own preferences."""
    checked = _spec(key).check(value)
    row_key = storage_key(user, key)
    with db.write() as conn:
        require(conn, user, "preferences")
        before = _read(conn, user, key)
        dialect = conn.dialect.name
        if dialect == "sqlite":
            # One statement, so two sessions saving at once cannot both insert the row.
            lite = sqlite_insert(settings_t).values(key=row_key, value=checked)
            conn.execute(lite.on_conflict_do_update(index_elements=[settings_t.c.key], set_={"value": checked}))
        elif dialect == "postgresql":
            pg = pg_insert(settings_t).values(key=row_key, value=checked)
            conn.execute(pg.on_conflict_do_update(index_elements=[settings_t.c.key], set_={"value": checked}))
        else:
            done = conn.execute(update(settings_t).where(settings_t.c.key == row_key).values(value=checked)).rowcount
            if not done:
                conn.execute(settings_t.insert().values(key=row_key, value=checked))
        if before != checked:
            record(conn, user, "preference.set", f"preference {key} of {_user(user)}", f"{key} changed",
                   before=before, after=checked)
    return checked
