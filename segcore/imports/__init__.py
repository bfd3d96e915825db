"""The import pipeline, one module a stage: read (sniff, decode) → map (columns to fields, values as people write
them) → check (the data contract, with line and column) → write (one transaction, only what the file maps).

Three kinds of file go through it: contacts, interactions and outcomes (orders, sign-ups ... that results count)."""

from __future__ import annotations

from .check import CONTACT_COLUMNS, CONTACT_FRAME_COLUMNS, EMAIL_RE, INTERACTION_COLUMNS, OUTCOME_COLUMNS
from .mapping import (
    CONTACT_TARGETS,
    INTERACTION_TARGETS,
    OUTCOME_TARGETS,
    ColumnChoice,
    Mapping,
    custom_field_name,
    header_signature,
    suggest_mapping,
)
from .pipeline import (
    DATE_ORDERS,
    ColumnReport,
    ImportPlan,
    delete_mapping,
    import_contacts,
    import_interactions,
    import_outcomes,
    list_mappings,
    plan_import,
    run_import,
    save_mapping,
    validate_contacts,
    validate_interactions,
    validate_outcomes,
)
from .read import RawTable, read_table
from .report import MAX_ERRORS_KEPT, ImportReport, RowError
from .write import ContactBatch, CustomColumn, Progress, write_contacts, write_interactions, write_outcomes

__all__ = [
    "CONTACT_TARGETS",
    "INTERACTION_TARGETS",
    "OUTCOME_COLUMNS",
    "OUTCOME_TARGETS",
    "custom_field_name",
    "CONTACT_COLUMNS",
    "CONTACT_FRAME_COLUMNS",
    "DATE_ORDERS",
    "EMAIL_RE",
    "INTERACTION_COLUMNS",
    "MAX_ERRORS_KEPT",
    "ColumnChoice",
    "ColumnReport",
    "ContactBatch",
    "CustomColumn",
    "ImportPlan",
    "ImportReport",
    "Mapping",
    "Progress",
    "RawTable",
    "RowError",
    "delete_mapping",
    "header_signature",
    "import_contacts",
    "import_interactions",
    "import_outcomes",
    "list_mappings",
    "plan_import",
    "read_table",
    "run_import",
    "save_mapping",
    "suggest_mapping",
    "validate_contacts",
    "validate_interactions",
    "validate_outcomes",
    "write_contacts",
    "write_interactions",
    "write_outcomes",
]
