"""The databases of `python -m bench.scale`: N contacts on SQLite and PostgreSQL, and a Parquet copy for Spark.

The demo generator stops at 1,000,000 contacts (segcore/_demo.py), so a larger population is the demo's first
`base` contacts copied in SQL: each copy k gets ids shifted by k × base, contact numbers prefixed `R{k}-`, e-mails
prefixed `r{k}.`, companies shifted with their contacts, and the same codes, profile answers, interactions and
custom values. The attributes repeat, which is what a benchmark of scans and charts needs: the same filters match
the same share of contacts at every size. A database that already holds N contacts is reused as it is (building
10M takes minutes; measuring it, seconds).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy import func, insert, select

from segcore._db import Database
from segcore._demo import DEMO_MAX_CONTACTS, load_demo
from segcore._models import Base, Contact, ContactCode, CustomValue, Interaction, ProfileAnswer, table_of
from segcore._snapshot import bump_data_version
from segcore.spark.export import CONTACT_COLUMNS, INTERACTION_COLUMNS, contacts_table, interactions_table

__all__ = ["base_size", "contact_count", "ensure_contacts", "export_parquet"]

contacts = table_of(Contact)
# The demo's reference date is fixed, so the filters relative to today match the same contacts on every run.
DEMO_TODAY = dt.date(2026, 3, 1)


def _say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


def contact_count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(contacts)).scalar_one())


def base_size(n: int) -> int:
    """The demo population that is copied up to n: all of n up to the demo's maximum, else its largest divisor of
    n not above it (10M → 1M)."""
    if n <= DEMO_MAX_CONTACTS:
        return n
    for base in range(DEMO_MAX_CONTACTS, 0, -1):
        if n % base == 0:
            return base
    raise AssertionError("unreachable: 1 divides n")


def _replicate(db: Database, copies: int, base: int) -> None:
    """Copy contacts 1..base `copies` times with ids shifted by k × base, with their related rows (one transaction
    a copy, so a build stopped half-way leaves whole copies and a count that says so)."""
    codes, answers, inter = table_of(ContactCode), table_of(ProfileAnswer), table_of(Interaction)
    values = table_of(CustomValue)
    cols = [c for c in contacts.c if c.name not in ("id", "contact_no", "email", "org_id")]
    icols = [c for c in inter.c if c.name not in ("id", "contact_id")]
    vcols = [c for c in values.c if c.name != "contact_id"]
    with db.write() as conn:
        done = int(conn.execute(select(func.count()).select_from(contacts)).scalar_one()) // base - 1
        # Secondary indexes off while copying, built once at the end: maintaining them row by row (interactions by
        # template and date, contacts by e-mail: random places in big B-trees) made each copy slower than the last.
        indexes = [ix for t in (contacts, codes, answers, inter, values) for ix in t.indexes if not ix.unique]
        existing = _index_names(conn)
        for ix in indexes:
            if ix.name in existing:
                ix.drop(conn)
    for k in range(done + 1, copies + 1):
        start = time.perf_counter()
        shift = sa.literal(k * base)
        with db.write() as conn:
            conn.execute(insert(contacts).from_select(
                ["id", "contact_no", "email", "org_id", *[c.name for c in cols]],
                select(contacts.c.id + shift, sa.literal(f"R{k}-") + contacts.c.contact_no,
                       sa.case((contacts.c.email.is_(None), None), else_=sa.literal(f"r{k}.") + contacts.c.email),
                       contacts.c.org_id + shift, *cols).where(contacts.c.id <= base),
            ))  # fmt: skip
            conn.execute(insert(codes).from_select(
                ["kind", "code", "contact_id"],
                select(codes.c.kind, codes.c.code, codes.c.contact_id + shift).where(codes.c.contact_id <= base),
            ))  # fmt: skip
            conn.execute(insert(answers).from_select(
                ["questionnaire", "answer", "contact_id"],
                select(answers.c.questionnaire, answers.c.answer, answers.c.contact_id + shift)
                .where(answers.c.contact_id <= base),
            ))  # fmt: skip
            conn.execute(insert(inter).from_select(
                ["contact_id", *[c.name for c in icols]],
                select(inter.c.contact_id + shift, *icols).where(inter.c.contact_id <= base),
            ))  # fmt: skip
            conn.execute(insert(values).from_select(
                ["contact_id", *[c.name for c in vcols]],
                select(values.c.contact_id + shift, *vcols).where(values.c.contact_id <= base),
            ))  # fmt: skip
        _say(f"  copy {k}/{copies}: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    with db.write() as conn:
        for ix in indexes:
            ix.create(conn)
    _say(f"  indexes: {time.perf_counter() - start:.1f} s")
    with db.write() as conn:
        if conn.dialect.name == "postgresql":
            # Rows inserted with explicit ids leave the sequences behind: the next import would collide.
            for table in (contacts, inter):
                conn.execute(select(func.setval(func.pg_get_serial_sequence(table.name, "id"),
                                                select(func.max(table.c.id)).scalar_subquery())))  # fmt: skip
        bump_data_version(conn)


def _index_names(conn: sa.Connection) -> set[str]:
    found: set[str] = set()
    inspector = sa.inspect(conn)
    for table in ("contacts", "contact_codes", "profile_answers", "interactions", "custom_values"):
        found.update(str(ix["name"]) for ix in inspector.get_indexes(table))
    return found


def ensure_contacts(db: Database, n: int, *, base: int | None = None) -> dict[str, Any]:
    """Make the database hold exactly the n scale contacts (reused when it does); what building took. `base`: the
    demo contacts generated before copying (default base_size(n); tests pass a small one to exercise the copy)."""
    out: dict[str, Any] = {}
    have = contact_count(db)
    if have == n:
        _say(f"{db.dialect}: reusing the {n:,} contacts already loaded")
        return out
    base = base or base_size(n)
    if have and have % base == 0 and have < n:
        _say(f"{db.dialect}: resuming the copies from {have:,} contacts")
        start = time.perf_counter()
        _replicate(db, n // base - 1, base)
        out["replicate_s"] = round(time.perf_counter() - start, 1)
        out["analyze_s"] = _analyze(db)
        return out
    if have:
        _say(f"{db.dialect}: the database holds {have:,} contacts, not {n:,}: recreating the schema")
        Base.metadata.drop_all(db.engine)
        db.ensure_schema()
    if n % base:
        raise SystemExit(f"--contacts must be a multiple of the demo population copied ({base:,})")
    start = time.perf_counter()
    load_demo(db, base, today=DEMO_TODAY, user="bench")
    out["demo_s"] = round(time.perf_counter() - start, 1)
    _say(f"{db.dialect}: {base:,} demo contacts in {out['demo_s']} s")
    start = time.perf_counter()
    _replicate(db, n // base - 1, base)
    out["replicate_s"] = round(time.perf_counter() - start, 1)
    out["analyze_s"] = _analyze(db)
    _say(f"{db.dialect}: replicated to {n:,} in {out['replicate_s']} s, analyzed in {out['analyze_s']} s")
    return out


def _analyze(db: Database) -> float:
    """The planner's statistics for the copied tables (constant statements); seconds taken."""
    start = time.perf_counter()
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    return round(time.perf_counter() - start, 1)


def export_parquet(db: Database, folder: Path, n: int, *, base: int | None = None) -> dict[str, Path]:
    """The n contacts and their interactions as Parquet under `folder` (reused when present), for a Spark source.

    The same contacts as the database: its first `base` contacts read once, then written once per copy with the
    contact numbers and e-mails `_replicate` gives that copy (every other value as it is), so Spark never waits
    for ten million rows to pass through Python objects. List fields are arrays of strings, profile answers
    `Q=A` items, as docs/spark.md accepts them."""
    base = base or base_size(n)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"contacts": folder / "contacts.parquet", "interactions": folder / "interactions.parquet"}
    if all(p.exists() for p in paths.values()):
        return paths
    start = time.perf_counter()
    codes, answers, inter = table_of(ContactCode), table_of(ProfileAnswer), table_of(Interaction)
    with db.read() as conn:
        rows = conn.execute(
            select(contacts.c.id, *[contacts.c[c] for c in CONTACT_COLUMNS])
            .where(contacts.c.id <= base)
            .order_by(contacts.c.id)
        ).mappings().all()
        lists: dict[tuple[str, int], list[str]] = {}
        for kind, code, cid in conn.execute(
            select(codes.c.kind, codes.c.code, codes.c.contact_id)
            .where(codes.c.contact_id <= base)
            .order_by(codes.c.code)
        ):
            lists.setdefault((kind, cid), []).append(code)
        for q, a, cid in conn.execute(
            select(answers.c.questionnaire, answers.c.answer, answers.c.contact_id).where(
                answers.c.contact_id <= base
            )
        ):
            lists.setdefault(("profile", cid), []).append(f"{q}={a}")
        irows = conn.execute(
            select(inter.c.contact_id, *[inter.c[c] for c in INTERACTION_COLUMNS]).where(
                inter.c.contact_id <= base, inter.c.cancelled.is_(False)
            )
        ).all()
    # The columns tests/spark_support.py writes too: segcore.spark.export holds them once.
    table = contacts_table(rows, lists)
    no_of = {r["id"]: r["contact_no"] for r in rows}
    itable = interactions_table([(no_of[r[0]], *r[1:]) for r in irows])
    del rows, irows, lists
    writers = {
        "contacts": pq.ParquetWriter(str(paths["contacts"]) + ".tmp", table.schema),
        "interactions": pq.ParquetWriter(str(paths["interactions"]) + ".tmp", itable.schema),
    }
    try:
        for k in range(n // base):
            writers["contacts"].write_table(_copy(table, k, ("contact_no", "email")))
            writers["interactions"].write_table(_copy(itable, k, ("contact_no",)))
    finally:
        for w in writers.values():
            w.close()
    for p in paths.values():
        Path(str(p) + ".tmp").replace(p)
    _say(f"parquet: {n:,} contacts in {time.perf_counter() - start:.1f} s")
    return paths


def _copy(table: pa.Table, k: int, keys: tuple[str, ...]) -> pa.Table:
    """Copy k of the base rows: contact numbers prefixed `R{k}-`, e-mails `r{k}.` (copy 0 is the base itself)."""
    if k == 0:
        return table
    for name in keys:
        prefix = f"R{k}-" if name == "contact_no" else f"r{k}."
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.binary_join_element_wise(prefix, table.column(name), ""))
    return table
