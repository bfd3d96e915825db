"""The database schema (SQLAlchemy 2.x typed ORM); the engine works on these tables with Core statements."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "SCHEMA_VERSION",
    "ActionDelta",
    "AuditEntry",
    "Base",
    "Campaign",
    "Contact",
    "ContactCode",
    "ContactSource",
    "CustomField",
    "CustomValue",
    "DynamicSegment",
    "DynamicSegmentCount",
    "ImportMapping",
    "Interaction",
    "KnownUserGroup",
    "KnownUserGroupEmail",
    "LoggedSegment",
    "LoggedSegmentMember",
    "Outcome",
    "ProfileAnswer",
    "SavedCriteria",
    "SchemaInfo",
    "Segment",
    "SegmentAction",
    "SegmentMember",
    "SourceContact",
    "SegmentStatusEvent",
    "Setting",
    "User",
    "table_of",
]

# Bump together with a migration step in _db.MIGRATIONS.
SCHEMA_VERSION = 9

# Money: NUMERIC in the database, float in Python. asdecimal=False keeps SQLite from warning about Decimal and
# keeps pandas frames numeric.
Money = Numeric(14, 2, asdecimal=False)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SchemaInfo(Base):
    """One row: the schema version this database is at."""

    __tablename__ = "schema_info"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    migrated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Contact(Base):
    """A company or a person; `id` is the stable row number the engine and the fast path index by."""

    __tablename__ = "contacts"
    __table_args__ = (
        CheckConstraint("type IN ('company', 'person')", name="ck_contacts_type"),
        CheckConstraint("gender IN ('female', 'male', 'other', 'unknown')", name="ck_contacts_gender"),
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="ck_contacts_rating"),
        CheckConstraint("churn_risk IS NULL OR churn_risk IN ('low', 'medium', 'high')", name="ck_contacts_churn"),
        CheckConstraint("total_spent IS NULL OR total_spent >= 0", name="ck_contacts_spent"),
        CheckConstraint("purchase_count IS NULL OR purchase_count >= 0", name="ck_contacts_purchases"),
        # org_id and company_no are NULL for every contact without a company (most of a consumer file): indexed
        # only where set, the index is small and a bulk import does not rebuild a million NULL entries. Lookups
        # (`= ?`, `IN`) imply NOT NULL, so both databases still use them (schema v8).
        Index("ix_contacts_org_id", "org_id", sqlite_where=text("org_id IS NOT NULL"),
              postgresql_where=text("org_id IS NOT NULL")),
        Index("ix_contacts_email", "email"),
        Index("ix_contacts_company_no", "company_no", sqlite_where=text("company_no IS NOT NULL"),
              postgresql_where=text("company_no IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_no: Mapped[str] = mapped_column(String(50), unique=True)
    type: Mapped[str] = mapped_column(String(10))
    company_no: Mapped[str | None] = mapped_column(String(50))
    # The id of the company this contact is, or belongs to; NULL for a person without a company. Derived by the
    # importer from type/company_no so that "expand companies" is one indexed self-join instead of two.
    org_id: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    # Stored lower-cased: e-mail addresses are matched case-insensitively everywhere.
    email: Mapped[str | None] = mapped_column(String(254))
    # Derived from email at import, stored so filters and charts on it use a column, not string surgery.
    email_domain: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(50))
    city: Mapped[str | None] = mapped_column(String(100))
    post_code: Mapped[str | None] = mapped_column(String(20))
    territory: Mapped[str | None] = mapped_column(String(30))
    salesperson: Mapped[str | None] = mapped_column(String(30))
    country: Mapped[str | None] = mapped_column(String(2))
    language: Mapped[str | None] = mapped_column(String(2))
    gender: Mapped[str] = mapped_column(String(7), default="unknown")
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    acquisition_date: Mapped[dt.date | None] = mapped_column(Date)
    last_purchase_date: Mapped[dt.date | None] = mapped_column(Date)
    acquisition_source: Mapped[str | None] = mapped_column(String(30))
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    churn_risk: Mapped[str | None] = mapped_column(String(6))
    # NULL = not set: a contact imported without a spend is not a contact who spent 0.
    total_spent: Mapped[float | None] = mapped_column(Money)
    purchase_count: Mapped[int | None] = mapped_column(Integer)
    exclude_from_segments: Mapped[bool] = mapped_column(Boolean, default=False)
    # Unknown import columns, kept as custom attributes.
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class ContactCode(Base):
    """One code of a contact's list field: kind is 'mailing_groups', 'industry_groups' or 'job_responsibilities'."""

    __tablename__ = "contact_codes"
    __table_args__ = (Index("ix_contact_codes_contact", "contact_id"),)

    # Key order (kind, code, contact_id): list filters select contacts by code, so that lookup is the index.
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)


class CustomField(Base):
    """A field a user's import added: its name in filters, its label, its type (number, date, code, text, boolean, list)."""

    __tablename__ = "custom_fields"
    __table_args__ = (
        CheckConstraint(
            "type IN ('number', 'date', 'code', 'text', 'boolean', 'list')", name="ck_custom_fields_type"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10))
    integer: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class CustomValue(Base):
    """One contact's value of one custom field (no row = not set); the column used follows the field's type."""

    __tablename__ = "custom_values"
    # Keyed (field_id, contact_id): a filter on a field reads one key range; a contact's values are few.
    __table_args__ = (Index("ix_custom_values_contact", "contact_id"), {"sqlite_with_rowid": False})

    field_id: Mapped[int] = mapped_column(ForeignKey("custom_fields.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)
    num: Mapped[float | None] = mapped_column(Float)  # number, boolean (0/1)
    txt: Mapped[str | None] = mapped_column(String(1000))  # code, text
    day: Mapped[dt.date | None] = mapped_column(Date)  # date


class ImportMapping(Base):
    """A saved column mapping, offered again when a file with the same header comes back."""

    __tablename__ = "import_mappings"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    signature: Mapped[str] = mapped_column(String(32), index=True)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class ProfileAnswer(Base):
    """A contact's answer to a profile questionnaire (QUESTIONNAIRE=ANSWER)."""

    __tablename__ = "profile_answers"
    __table_args__ = (Index("ix_profile_answers_contact", "contact_id"),)

    questionnaire: Mapped[str] = mapped_column(String(30), primary_key=True)
    answer: Mapped[str] = mapped_column(String(60), primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True)


class Campaign(Base):
    """A marketing campaign that segments target."""

    __tablename__ = "campaigns"

    no: Mapped[str] = mapped_column(String(30), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="planned")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Interaction(Base):
    """One entry of the interaction log (imported, or written by Log segment)."""

    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_contact_date", "contact_id", "date"),
        Index("ix_interactions_template_date", "template", "date"),
        Index("ix_interactions_logged", "logged_segment_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date)
    template: Mapped[str] = mapped_column(String(20))
    campaign_no: Mapped[str | None] = mapped_column(String(30))
    segment_no: Mapped[str | None] = mapped_column(String(30))
    evaluation: Mapped[str | None] = mapped_column(String(20))
    salesperson: Mapped[str | None] = mapped_column(String(30))
    cost: Mapped[float | None] = mapped_column(Money)
    duration_min: Mapped[int | None] = mapped_column(Integer)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    logged_segment_id: Mapped[int | None] = mapped_column(ForeignKey("logged_segments.id"))
    created_by: Mapped[str | None] = mapped_column(String(60))


class Outcome(Base):
    """A contact's result worth counting (an order, a sign-up, a reply): what campaign results measure."""

    __tablename__ = "outcomes"
    __table_args__ = (
        CheckConstraint("amount IS NULL OR amount >= 0", name="ck_outcomes_amount"),
        # Results read one window of days (optionally of some kinds): date first, and covering (contact, amount), so
        # the window's rows come from the index alone, without a table lookup per outcome.
        Index("ix_outcomes_window", "date", "kind", "contact_id", "amount"),
        Index("ix_outcomes_contact_date", "contact_id", "date"),
        # An order number counts once per kind. NULLs are distinct in a unique index on SQLite and PostgreSQL,
        # so outcomes without a reference never collide; the import updates a stored reference instead of adding.
        UniqueConstraint("kind", "reference", name="uq_outcomes_kind_reference"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date)
    # An upper-case code (ORDER, SIGNUP, REPLY ...), as interaction templates are.
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[float | None] = mapped_column(Money)
    reference: Mapped[str | None] = mapped_column(String(60))
    created_by: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class Segment(Base):
    """A static segment: a set of contacts built by logged, undoable actions."""

    __tablename__ = "segments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'submitted', 'approved', 'rejected', 'logged')", name="ck_segments_status"
        ),
        # Never reuse a deleted segment's id: caches are keyed by (id, version).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    no: Mapped[str] = mapped_column(String(30), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    campaign_no: Mapped[str | None] = mapped_column(ForeignKey("campaigns.no"))
    owner: Mapped[str] = mapped_column(String(60), default="")
    status: Mapped[str] = mapped_column(String(12), default="draft")
    status_comment: Mapped[str | None] = mapped_column(Text)
    # Optimistic concurrency: every write bumps it; a writer that read an older version is refused.
    version: Mapped[int] = mapped_column(Integer, default=0)
    # Actions with seq <= head_seq are applied; those above were undone and can be redone.
    head_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Member count, kept by the engine in the same transaction as the members, so lists need no COUNT(*).
    size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    approved_head_seq: Mapped[int | None] = mapped_column(Integer)
    # The contact source its members come from (sources.name); NULL = the contacts of the application database.
    source: Mapped[str | None] = mapped_column(String(60))


class ContactSource(Base):
    """Contacts that stay where they are (a Spark table or a Parquet/CSV location), mapped to our fields."""

    __tablename__ = "sources"
    __table_args__ = (
        CheckConstraint("kind IN ('table', 'path')", name="ck_sources_kind"),
        CheckConstraint("interactions_kind IS NULL OR interactions_kind IN ('table', 'path')", name="ck_sources_ikind"),
    )

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    # The Spark that reads it: local[N] or a Spark Connect address sc://host:port.
    spark_url: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(10))  # table | path
    location: Mapped[str] = mapped_column(String(1000))  # a table name, or a path / URI
    format: Mapped[str | None] = mapped_column(String(10))  # parquet | csv for a path
    # The column mapping (segcore.imports.Mapping.to_json) of the contacts, and of the interactions when there are.
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    interactions_kind: Mapped[str | None] = mapped_column(String(10))
    interactions_location: Mapped[str | None] = mapped_column(String(1000))
    interactions_format: Mapped[str | None] = mapped_column(String(10))
    interactions_mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)



class SourceContact(Base):
    """A contact of a source that is or was a member of a segment: its number in the source, and our id for it.

    Only the contacts a step brought in or took out are here, never a copy of the source. Ids are negative so that a
    join with `contacts` can never pair a source's contact with one of the application database's."""

    __tablename__ = "source_contacts"
    __table_args__ = (UniqueConstraint("source", "contact_no", name="uq_source_contacts_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(ForeignKey("sources.name", ondelete="CASCADE"))
    contact_no: Mapped[str] = mapped_column(String(200))


class SegmentMember(Base):
    """A contact in a segment; added_seq is the action that brought it in (provenance)."""

    __tablename__ = "segment_members"
    # Clustered on (segment_id, contact_id) with no other index: a 300k-member step writes one b-tree, not three.
    # Undo finds a step's members by scanning the segment's own key range, which is cheap next to the write.
    __table_args__ = {"sqlite_with_rowid": False}

    # No foreign key (schema v8): PostgreSQL checks one with a trigger call per row, most of a 3M-member Add's time.
    # The engine writes segment_id only from the segment row it holds locked; delete_segment deletes the members.
    segment_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # contacts.id for a segment of the application database's contacts; source_contacts.id (negative, so never
    # one of contacts.id) for a segment built over a source, whose contacts are not in this database: no foreign key.
    contact_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    added_seq: Mapped[int] = mapped_column(Integer)


class SegmentAction(Base):
    """One line of a segment's criteria log."""

    __tablename__ = "segment_actions"
    __table_args__ = (UniqueConstraint("segment_id", "seq", name="uq_segment_actions_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    filter_json: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the action was given besides a filter: contact numbers, e-mails, a source segment.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    size_after: Mapped[int] = mapped_column(Integer, default=0)
    user: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class ActionDelta(Base):
    """Rows an action took out (sign -1, with their provenance) or, once undone, put in (sign +1).

    Members an applied action added need no row here: their added_seq already names the action.
    """

    __tablename__ = "action_deltas"
    __table_args__ = {"sqlite_with_rowid": False}

    action_id: Mapped[int] = mapped_column(ForeignKey("segment_actions.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sign: Mapped[int] = mapped_column(SmallInteger)
    prev_seq: Mapped[int | None] = mapped_column(Integer)


class SegmentStatusEvent(Base):
    """Who moved a segment between review states, when, and why."""

    __tablename__ = "segment_status_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    comment: Mapped[str | None] = mapped_column(Text)
    user: Mapped[str] = mapped_column(String(60), default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class SavedCriteria(Base):
    """A saved action sequence (kind, filter, options per step) that can be replayed on any segment."""

    __tablename__ = "saved_criteria"

    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    steps: Mapped[list[Any]] = mapped_column(JSON)
    source_segment_no: Mapped[str | None] = mapped_column(String(30))
    created_by: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class LoggedSegment(Base):
    """The immutable snapshot written when a segment is logged."""

    __tablename__ = "logged_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id"), unique=True)
    segment_no: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(String(200))
    campaign_no: Mapped[str | None] = mapped_column(String(30))
    template: Mapped[str] = mapped_column(String(20))
    date: Mapped[dt.date] = mapped_column(Date)
    member_count: Mapped[int] = mapped_column(Integer)
    holdout_count: Mapped[int] = mapped_column(Integer, default=0)
    holdout_pct: Mapped[float | None] = mapped_column(Float)
    holdout_seed: Mapped[int | None] = mapped_column(Integer)
    follow_up_segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"))
    logged_by: Mapped[str] = mapped_column(String(60), default="")
    logged_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class LoggedSegmentMember(Base):
    """A member of a logged snapshot; holdout members got no interaction (the control group)."""

    __tablename__ = "logged_segment_members"

    logged_id: Mapped[int] = mapped_column(ForeignKey("logged_segments.id", ondelete="CASCADE"), primary_key=True)
    # As segment_members.contact_id: a source contact's id (negative) when the segment is built over a source.
    contact_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holdout: Mapped[bool] = mapped_column(Boolean, default=False)


class DynamicSegment(Base):
    """A saved filter evaluated against the current data (Partner Center segment)."""

    __tablename__ = "dynamic_segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    no: Mapped[str] = mapped_column(String(30), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    filter_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    # The contact source it counts (sources.name); NULL = the contacts of the application database.
    source: Mapped[str | None] = mapped_column(String(60))


class DynamicSegmentCount(Base):
    """One refresh of a dynamic segment: its count against all contacts at that time."""

    __tablename__ = "dynamic_segment_counts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dynamic_id: Mapped[int] = mapped_column(ForeignKey("dynamic_segments.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    count: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)


class KnownUserGroup(Base):
    """A list of e-mail addresses matched to contacts (Partner Center known user group)."""

    __tablename__ = "known_user_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class KnownUserGroupEmail(Base):
    """One address of a known user group, lower-cased."""

    __tablename__ = "known_user_group_emails"

    group_id: Mapped[int] = mapped_column(ForeignKey("known_user_groups.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class Setting(Base):
    """A named setting (e.g. minimum_segment_size)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class User(Base):
    """A local account: who may sign in, with which role; the password is kept only as a slow, salted hash."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('viewer', 'marketer', 'manager', 'admin')", name="ck_users_role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The name every record uses (criteria log, review history, audit): the same 60 characters as those columns.
    name: Mapped[str] = mapped_column(String(60), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    # An argon2id hash (PHC string: algorithm, parameters, salt, hash); NULL = no password, cannot sign in with one.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # For single sign-on later: the e-mail address an identity provider vouches for.
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(60), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)


class AuditEntry(Base):
    """One line of the append-only audit trail: who did what to which object, when, with a short before/after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_user_at", "user", "at"),
        Index("ix_audit_log_object", "object"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_now)
    user: Mapped[str] = mapped_column(String(60), default="")
    # A dotted kind, family first ("segment.apply", "user.sign_in_failed"), so a family filters by prefix.
    kind: Mapped[str] = mapped_column(String(40))
    # The object as a person names it: "segment SPRING", "setting four_eyes", "user alice".
    object: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed as a Table (the ORM types `__table__` as any FromClause)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table
