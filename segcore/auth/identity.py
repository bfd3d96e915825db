"""Who acts when a writer is given no `user=`: the name the command line (or a script) acts as, else the OS user."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["acting_as", "current_user", "fold_name"]

# A context variable rather than a global: the dashboard serves several sessions from threads of one process,
# and each must keep its own name.
_ACTING: ContextVar[str | None] = ContextVar("segcore_acting_user", default=None)


def current_user() -> str:
    """The name set by `acting_as`, else the operating-system user (the author of actions from scripts)."""
    acting = _ACTING.get()
    if acting is not None:
        return acting
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not an error worth failing an action for
        return ""


@contextmanager
def acting_as(name: str) -> Iterator[str]:
    """Within the block, writers called without `user=` act as `name`."""
    token = _ACTING.set(name)
    try:
        yield name
    finally:
        _ACTING.reset(token)


def fold_name(name: str | None) -> str:
    """An account name as stored and compared: trimmed and lower-cased (Alice and alice are one person)."""
    return (name or "").strip().lower()
