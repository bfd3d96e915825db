"""Fields are data: the built-in fields, the custom fields a database adds, and the registry that holds both."""

from __future__ import annotations

from .builtin import (
    AGE_BANDS,
    CONTACT_FIELDS,
    EVALUATIONS,
    INTERACTION_FIELDS,
    LIST_FIELDS,
    LIST_VALUE_OPS,
    NO_VALUE_OPS,
    OPS_BY_TYPE,
    PROFILE_FIELDS,
    RELATIONS,
    FieldSpec,
    builtin_field,
    custom_spec,
)
from .registry import BUILTIN, FieldRegistry, fields_of, load_fields

__all__ = [
    "AGE_BANDS",
    "BUILTIN",
    "CONTACT_FIELDS",
    "EVALUATIONS",
    "INTERACTION_FIELDS",
    "LIST_FIELDS",
    "LIST_VALUE_OPS",
    "NO_VALUE_OPS",
    "OPS_BY_TYPE",
    "PROFILE_FIELDS",
    "RELATIONS",
    "FieldRegistry",
    "FieldSpec",
    "builtin_field",
    "custom_spec",
    "fields_of",
    "load_fields",
]
