"""The built-in fields: their types, operators, labels and value normalisation.

Custom fields (made by imports) join these in a `FieldRegistry` (registry.py); everything that turns a user's field
name into a column asks the registry. A name that is not in it is an error, never a column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "AGE_BANDS",
    "CONTACT_FIELDS",
    "EVALUATIONS",
    "INTERACTION_FIELDS",
    "LIST_FIELDS",
    "LIST_VALUE_OPS",
    "NO_VALUE_OPS",
    "OPS_BY_TYPE",
    "PROFILE_FIELDS",
    "RELATIONS",
    "FieldSpec",
    "builtin_field",
    "custom_spec",
]

TEXT_OPS = (
    "eq", "ne", "in", "not_in", "contains", "starts_with", "ends_with", "matches", "is_empty", "is_not_empty",
)  # fmt: skip
ORDERED_OPS = ("eq", "ne", "lt", "le", "gt", "ge", "between", "is_empty", "is_not_empty")
BOOL_OPS = ("is_true", "is_false")
LIST_OPS = ("has_any", "has_all", "has_none")
# Operators that take no value.
NO_VALUE_OPS = frozenset({"is_empty", "is_not_empty", "is_true", "is_false"})
# Operators whose value is a list.
LIST_VALUE_OPS = frozenset({"in", "not_in", "has_any", "has_all", "has_none"})

OPS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "text": TEXT_OPS,
    "code": TEXT_OPS,
    "number": ORDERED_OPS,
    "date": ORDERED_OPS,
    "boolean": BOOL_OPS,
    "list": LIST_OPS,
}

AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("<18", 0, 17),
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, None),
)
EVALUATIONS = ("very_positive", "positive", "neutral", "negative", "very_negative")


def _upper(value: str) -> str:
    return value.strip().upper()


def _lower(value: str) -> str:
    return value.strip().lower()


def _keep(value: str) -> str:
    return value


@dataclass(frozen=True)
class FieldSpec:
    """One filterable field: its type, where it lives, and how its values are normalised."""

    name: str
    label: str
    type: str  # text | code | number | date | boolean | list
    # How a code value is stored: filter values go through the same function, so equality needs no lower().
    normalize: Callable[[str], str] = _keep
    # Fixed set of values, when the data contract has one.
    choices: tuple[str, ...] = ()
    # True for derived fields that are computed, not stored (age, age_band, days_since_last_purchase).
    derived: bool = False
    integer: bool = False
    ops: tuple[str, ...] = field(default=())
    # For code fields stored as they come (e.g. free codes), comparison is still case-insensitive via lower().
    case_folded: bool = False
    # Free text that every writer stores lower-cased (e-mail): compared without lower() on the column, so the
    # index serves equality, yet still case-insensitive because the filter value is lower-cased too.
    stored_lower: bool = False
    # Bounds a filter value must respect, for derived fields whose values become date arithmetic.
    min_value: int | None = None
    max_value: int | None = None
    # A custom field's id in custom_fields: its values live in custom_values (list fields: contact_codes under
    # `code_kind`), never in a column named after it.
    custom_id: int | None = None

    @property
    def custom(self) -> bool:
        return self.custom_id is not None

    @property
    def code_kind(self) -> str:
        """The contact_codes kind that holds a list field's codes."""
        return f"cf{self.custom_id}" if self.custom_id is not None else self.name

    def allowed_ops(self) -> tuple[str, ...]:
        return self.ops or OPS_BY_TYPE[self.type]


def custom_spec(custom_id: int, name: str, label: str, type_: str, integer: bool = False) -> FieldSpec:
    """The spec of a custom field: codes (and list codes) stored upper-cased like the built-in ones, text as written."""
    normalize = _upper if type_ in ("code", "list") else _keep_trimmed
    return FieldSpec(
        name,
        label,
        type_,
        normalize=normalize,
        integer=integer,
        custom_id=custom_id,
        case_folded=type_ == "code",
    )


def _keep_trimmed(value: str) -> str:
    return value.strip()


def _f(name: str, label: str, type_: str, **kw: object) -> FieldSpec:
    return FieldSpec(name, label, type_, **kw)  # type: ignore[arg-type]


CONTACT_FIELDS: dict[str, FieldSpec] = {
    s.name: s
    for s in (
        _f("contact_no", "Contact no.", "text"),
        _f("type", "Type", "code", normalize=_lower, choices=("company", "person"), case_folded=True),
        _f("company_no", "Company no.", "text"),
        _f("name", "Name", "text"),
        _f("email", "E-mail", "text", stored_lower=True),
        _f("email_domain", "E-mail domain", "text", derived=False, stored_lower=True),
        _f("phone", "Phone", "text"),
        _f("city", "City", "text"),
        _f("post_code", "Post code", "text"),
        _f("territory", "Territory", "code", normalize=_upper, case_folded=True),
        _f("salesperson", "Salesperson", "code", normalize=_upper, case_folded=True),
        _f("country", "Country", "code", normalize=_upper, case_folded=True),
        _f("language", "Language", "code", normalize=_lower, case_folded=True),
        _f(
            "gender",
            "Gender",
            "code",
            normalize=_lower,
            choices=("female", "male", "other", "unknown"),
            case_folded=True,
        ),
        _f("birth_date", "Birth date", "date"),
        _f("acquisition_date", "Acquisition date", "date"),
        _f("last_purchase_date", "Last purchase", "date"),
        _f("acquisition_source", "Acquisition source", "code", normalize=_lower, case_folded=True),
        _f("rating", "Rating", "number", integer=True),
        _f(
            "churn_risk",
            "Churn risk",
            "code",
            normalize=_lower,
            choices=("low", "medium", "high"),
            case_folded=True,
        ),
        _f("total_spent", "Total spent", "number"),
        _f("purchase_count", "Purchases", "number", integer=True),
        _f("exclude_from_segments", "Excluded from segments", "boolean"),
        _f("mailing_groups", "Mailing groups", "list", normalize=_upper),
        _f("industry_groups", "Industry groups", "list", normalize=_upper),
        _f("job_responsibilities", "Job responsibilities", "list", normalize=_upper),
        _f("age", "Age", "number", derived=True, integer=True, min_value=0, max_value=200),
        _f(
            "age_band",
            "Age band",
            "code",
            derived=True,
            choices=tuple(b[0] for b in AGE_BANDS),
            ops=("eq", "ne", "in", "not_in", "is_empty", "is_not_empty"),
        ),
        _f(
            "days_since_last_purchase",
            "Days since last purchase",
            "number",
            derived=True,
            integer=True,
            min_value=-100_000,
            max_value=100_000,
        ),
    )
}

LIST_FIELDS = ("mailing_groups", "industry_groups", "job_responsibilities")

INTERACTION_FIELDS: dict[str, FieldSpec] = {
    s.name: s
    for s in (
        _f("date", "Date", "date"),
        _f("template", "Template", "code", normalize=_upper, case_folded=True),
        _f("campaign_no", "Campaign no.", "text"),
        _f("segment_no", "Segment no.", "text"),
        _f("evaluation", "Evaluation", "code", normalize=_lower, choices=EVALUATIONS, case_folded=True),
        _f("salesperson", "Salesperson", "code", normalize=_upper, case_folded=True),
    )
}

PROFILE_FIELDS: dict[str, FieldSpec] = {
    s.name: s
    for s in (
        _f("questionnaire", "Questionnaire", "code", normalize=_upper, case_folded=True),
        _f("answer", "Answer", "code", normalize=_upper, case_folded=True),
    )
}

RELATIONS: dict[str, dict[str, FieldSpec]] = {"interactions": INTERACTION_FIELDS, "profile": PROFILE_FIELDS}


def builtin_field(name: str, relation: str | None = None) -> FieldSpec | None:
    """The spec of a built-in field, or None when the name is not one."""
    table = CONTACT_FIELDS if relation is None else RELATIONS.get(relation, {})
    return table.get(name)
