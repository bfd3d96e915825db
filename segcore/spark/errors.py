"""The Spark errors, in segcore's one exception tree (segcore/_errors.py): each message is one line for a person.

A malformed Spark URL or source definition is a plain ConfigError (a usage error, CLI exit 2). A well-formed one
that the world refuses (no Java, a server that does not answer, a missing table, a column of the wrong type) is a
ConfigError subclass with exit code 1, like a refused action: the command was right, the configuration it names
is not usable.
"""

from __future__ import annotations

from .._errors import ConfigError, NotFoundError, RefusedError

__all__ = ["SourceConfigError", "SourceInUse", "SourceNotFound", "SparkUnavailable"]


class SparkUnavailable(ConfigError):
    """Spark cannot be reached: pyspark or Java missing, a Spark Connect server that does not answer, Spark failed."""

    exit_code = 1


class SourceConfigError(ConfigError):
    """A contact source that does not fit: a missing table or path, a mapped column missing or of the wrong type."""

    exit_code = 1


class SourceNotFound(NotFoundError):
    """No contact source of that name."""


class SourceInUse(RefusedError):
    """A source that segments still use cannot be removed."""
