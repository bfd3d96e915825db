"""Counted nouns for messages: "1 member", "2 members" — one rule for every message the core writes."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, word: str, words: str | None = None) -> str:
    """`count` with thousands separators and the noun in the right number: 1 contact, 12,345 contacts."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"
