"""The values that describe a step (what to do, with which filter and options) and what a preview says it would do.

They live below both the engine (which applies a step) and the evaluation backends (which preview it), so neither
imports the other to speak of a step. `segcore` and `segcore._engine` re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._errors import UsageError
from ._filter_describe import describe
from ._filter_tree import Node, from_json, to_json
from ._words import plural
from .fields import FieldRegistry

__all__ = [
    "ACTION_KINDS",
    "ADDING",
    "CONTACT_TYPES",
    "EXCLUDING",
    "FILTER_KINDS",
    "KIND_LABELS",
    "MAX_MANUAL_VALUES",
    "ActionOptions",
    "ActionRequest",
    "Preview",
]

ACTION_KINDS = ("add", "refine", "reduce", "add_contacts", "remove_contacts", "add_emails", "reuse_segment")
# Which kinds put members in, and which take them out; every kind does exactly one of the two.
ADDING = frozenset({"add", "add_contacts", "add_emails", "reuse_segment"})
FILTER_KINDS = frozenset({"add", "refine", "reduce"})
# The kinds that leave out contacts flagged "exclude from segments" (unless asked to ignore the flag): Reuse segment
# takes the members as they are.
EXCLUDING = frozenset({"add", "add_contacts", "add_emails"})
KIND_LABELS = {
    "add": "Add",
    "refine": "Refine",
    "reduce": "Reduce",
    "add_contacts": "Add contacts",
    "remove_contacts": "Remove contacts",
    "add_emails": "Add e-mails",
    "reuse_segment": "Reuse segment",
}
MAX_MANUAL_VALUES = 1_000_000

CONTACT_TYPES = ("person", "company")
# How a step sentence names the Add's contact-type restriction.
_CONTACT_TYPE_TEXT = {"person": "persons only", "company": "companies only"}


@dataclass(frozen=True)
class ActionOptions:
    """The options of Add (contact type, expand/related companies, ignore exclusion) and of Refine/Reduce (entire
    companies).

    `contact_type` ("person", "company" or None for both) restricts the contacts C an Add's filter matches to that
    type *before* expand / related companies apply, so None keeps Business Central's semantics exactly and "person"
    with related companies still brings each matched person's company."""

    expand_companies: bool = False
    related_companies: bool = False
    ignore_exclusion: bool = False
    entire_companies: bool = False
    contact_type: str | None = None

    def __post_init__(self) -> None:
        if self.contact_type is not None and self.contact_type not in CONTACT_TYPES:
            raise UsageError(
                f"contact type {self.contact_type!r} is not valid; use person, company or none (both)"
            )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ActionOptions:
        data = data or {}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise UsageError(f"unknown action option: {', '.join(sorted(unknown))}")
        flags = {k: bool(v) for k, v in data.items() if k != "contact_type"}
        kind = data.get("contact_type") or None
        if kind is not None and not isinstance(kind, str):
            raise UsageError(f"contact type {kind!r} is not valid; use person, company or none (both)")
        return cls(**flags, contact_type=kind.lower() if kind else None)

    def describe(self) -> list[str]:
        """The options as the step sentence names them: "persons only", "expand companies"…"""
        first = [_CONTACT_TYPE_TEXT[self.contact_type]] if self.contact_type else []
        return first + [k.replace("_", " ") for k in self.as_dict() if k != "contact_type"]


@dataclass(frozen=True)
class ActionRequest:
    """A pending step: what to do, with which filter, options and inputs."""

    kind: str
    filter: Node | None = None
    options: ActionOptions = field(default_factory=ActionOptions)
    contact_nos: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    source_segment_no: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise UsageError(f"unknown action {self.kind!r}; use one of {', '.join(ACTION_KINDS)}")
        if self.kind in FILTER_KINDS and self.filter is None:
            raise UsageError(f"{KIND_LABELS[self.kind]} needs a filter")
        add_only = ("expand_companies", "related_companies", "ignore_exclusion")
        if self.kind not in ("add", "add_contacts", "add_emails") and any(
            getattr(self.options, o) for o in add_only
        ):
            raise UsageError(f"{KIND_LABELS[self.kind]} takes no expand/related/ignore-exclusion option")
        if self.options.entire_companies and self.kind not in ("refine", "reduce"):
            raise UsageError("the entire-companies option is for Refine and Reduce")
        if self.options.contact_type is not None and self.kind != "add":
            raise UsageError("persons only / companies only is an option of Add")
        if self.kind in ("add_contacts", "remove_contacts") and not self.contact_nos:
            raise UsageError(f"{KIND_LABELS[self.kind]} needs at least one contact number")
        if self.kind == "add_emails" and not self.emails:
            raise UsageError("Add e-mails needs at least one address")
        if self.kind == "reuse_segment" and not self.source_segment_no:
            raise UsageError("Reuse segment needs the number of the segment to reuse")
        if len(self.contact_nos) > MAX_MANUAL_VALUES or len(self.emails) > MAX_MANUAL_VALUES:
            raise UsageError(f"at most {MAX_MANUAL_VALUES:,} values in one action")

    @property
    def adds(self) -> bool:
        return self.kind in ADDING

    @property
    def excluding(self) -> bool:
        """True when the step leaves out contacts flagged "exclude from segments" (an adding step, unless told not to)."""
        return self.kind in EXCLUDING and not self.options.ignore_exclusion

    def payload(self) -> dict[str, Any] | None:
        if self.contact_nos:
            return {"contact_nos": list(self.contact_nos)}
        if self.emails:
            return {"emails": list(self.emails)}
        if self.source_segment_no:
            return {"source_segment_no": self.source_segment_no}
        return None

    def to_step(self) -> dict[str, Any]:
        """The JSON form stored by Save criteria."""
        step: dict[str, Any] = {"kind": self.kind, "options": self.options.as_dict()}
        if self.filter is not None:
            step["filter"] = to_json(self.filter)
        if self.payload():
            step["payload"] = self.payload()
        return step

    @classmethod
    def from_step(cls, step: dict[str, Any], fields: FieldRegistry | None = None) -> ActionRequest:
        payload = step.get("payload") or {}
        flt = step.get("filter")
        return cls(
            kind=step["kind"],
            filter=from_json(flt, fields) if flt is not None else None,
            options=ActionOptions.from_dict(step.get("options")),
            contact_nos=tuple(payload.get("contact_nos", ())),
            emails=tuple(payload.get("emails", ())),
            source_segment_no=payload.get("source_segment_no"),
        )

    def describe(self, fields: FieldRegistry | None = None) -> str:
        if self.filter is not None:
            text = describe(self.filter, fields)
        elif self.contact_nos:
            shown = ", ".join(self.contact_nos[:5]) + (" …" if len(self.contact_nos) > 5 else "")
            text = f"{plural(len(self.contact_nos), 'named contact')}: {shown}"
        elif self.emails:
            text = plural(len(self.emails), "e-mail address", "e-mail addresses")
        else:
            text = f"members of segment {self.source_segment_no} (the contacted ones, when it was logged with a control group)"
        opts = self.options.describe()
        return text + (f" [{', '.join(opts)}]" if opts else "")


@dataclass(frozen=True)
class Preview:
    """What an action would do, computed without writing anything."""

    kind: str
    size_before: int
    size_after: int
    matched: int
    added: int
    removed: int
    unmatched: tuple[str, ...] = ()
    skipped_excluded: int = 0

    @classmethod
    def of(
        cls,
        request: ActionRequest,
        size_before: int,
        matched: int,
        changed: int,
        unmatched: tuple[str, ...] = (),
        skipped_excluded: int = 0,
    ) -> Preview:
        """The counts of `request` on a segment of `size_before` members, `changed` of them added or removed."""
        added, removed = (changed, 0) if request.adds else (0, changed)
        return cls(
            request.kind,
            size_before,
            size_before + added - removed,
            matched,
            added,
            removed,
            unmatched,
            skipped_excluded,
        )
