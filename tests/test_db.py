from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from segcore import ConfigError, Database, resolve_url
from segcore._db import after_commit
from segcore._models import SCHEMA_VERSION, Contact, Setting


def test_fresh_database_has_schema_version_and_settings(db: Database) -> None:
    assert db.schema_version() == SCHEMA_VERSION
    with db.read() as conn:
        assert conn.execute(select(Setting.value).where(Setting.key == "minimum_segment_size")).scalar_one() == 50
        assert conn.execute(select(func.count()).select_from(Contact)).scalar_one() == 0


def test_write_rolls_back_whole_on_error(db: Database) -> None:
    with pytest.raises(RuntimeError):
        with db.write() as conn:
            conn.execute(Contact.__table__.insert().values(contact_no="C1", type="person", name="A"))
            raise RuntimeError("boom")
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(Contact)).scalar_one() == 0


def test_scratch_always_rolls_back(db: Database) -> None:
    with db.scratch() as conn:
        conn.execute(Contact.__table__.insert().values(contact_no="C1", type="person", name="A"))
        # Visible inside the scratch transaction, gone after it.
        assert conn.execute(select(func.count()).select_from(Contact)).scalar_one() == 1
    with db.read() as conn:
        assert conn.execute(select(func.count()).select_from(Contact)).scalar_one() == 0


@pytest.mark.parametrize("ends", ["commit", "rollback", "scratch"])
def test_after_commit_runs_only_once_the_write_committed(db: Database, ends: str) -> None:
    # Caches learn only what is durable: an id or a version seen in a rolled-back transaction comes again.
    ran: list[str] = []
    if ends == "scratch":
        with db.scratch() as conn:
            after_commit(conn, lambda: ran.append("scratch"))
    else:
        with pytest.raises(RuntimeError) if ends == "rollback" else contextlib.nullcontext():
            with db.write() as conn:
                after_commit(conn, lambda: ran.append(ends))
                assert ran == []
                if ends == "rollback":
                    raise RuntimeError("boom")
    assert ran == (["commit"] if ends == "commit" else [])
    # Nothing left behind on the pooled connection for the next transaction.
    with db.write():
        pass
    assert ran == (["commit"] if ends == "commit" else [])


def test_write_without_foreign_keys_gives_them_back(sqlite_db: Database) -> None:
    # A bulk load may skip SQLite's per-row reference checks for its one transaction; the pooled connection gets
    # them back after a commit and after a rollback alike.
    with sqlite_db.write(foreign_keys=False) as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 0
        conn.execute(Contact.__table__.insert().values(contact_no="C1", type="person", name="A"))
    with pytest.raises(RuntimeError):
        with sqlite_db.write(foreign_keys=False) as conn:
            conn.execute(Contact.__table__.insert().values(contact_no="C2", type="person", name="B"))
            raise RuntimeError("boom")
    assert sqlite_db.engine.pool.checkedin() == 1  # the one connection, back in the pool
    with sqlite_db.write() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.execute(select(Contact.contact_no)).scalars().all() == ["C1"]


def test_write_with_checkpoint_later_commits_then_checkpoints_on_a_thread(sqlite_db: Database) -> None:
    # A bulk load's COMMIT stops at the WAL; the copy into the database file runs right after on a thread. The
    # pooled connection gets its automatic checkpoints back, after a commit and after a rollback alike.
    rows = [{"contact_no": f"C{i}", "type": "person", "name": "x" * 200} for i in range(5000)]
    with sqlite_db.write(checkpoint_later=True) as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
        conn.execute(Contact.__table__.insert(), rows)
    with sqlite_db.read() as conn:  # committed: seen at once, from the WAL or the file
        assert conn.execute(select(func.count()).select_from(Contact)).scalar_one() == 5000
    sqlite_db.wait_checkpoints()
    # The thread copied the load into the database file (the COMMIT alone leaves it in the WAL).
    assert Path(make_url(sqlite_db.url).database).stat().st_size > 5000 * 200
    with pytest.raises(RuntimeError):
        with sqlite_db.write(foreign_keys=False, checkpoint_later=True) as conn:
            conn.execute(Contact.__table__.insert().values(contact_no="X", type="person", name="B"))
            raise RuntimeError("boom")
    assert sqlite_db._checkpoints == []  # nothing committed, nothing to copy
    with sqlite_db.write() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(Contact)).scalar_one() == 5000


def test_write_with_checkpoint_later_on_an_in_memory_database_is_a_plain_write() -> None:
    db = Database.open("sqlite://")
    with db.write(checkpoint_later=True) as conn:
        conn.execute(Contact.__table__.insert().values(contact_no="C1", type="person", name="A"))
    assert db._checkpoints == []
    with db.read() as conn:
        assert conn.execute(select(Contact.name)).scalar_one() == "A"
    db.dispose()


def test_a_new_sqlite_database_gets_16k_pages_and_an_old_one_keeps_its_own(tmp_path) -> None:
    import sqlite3

    db = Database.open(f"sqlite:///{tmp_path / 'new.db'}")
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar_one() == 16384
    db.dispose()
    old = sqlite3.connect(tmp_path / "old.db")  # a database made before: 4 KB pages
    old.execute("PRAGMA page_size = 4096")
    old.execute("CREATE TABLE made_before (x INTEGER)")
    old.commit()
    old.close()
    db = Database.open(f"sqlite:///{tmp_path / 'old.db'}")
    with db.write() as conn:
        conn.execute(Contact.__table__.insert().values(contact_no="C1", type="person", name="A"))
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar_one() == 4096
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.execute(select(Contact.name)).scalar_one() == "A"
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    db.dispose()


def test_reopen_keeps_data(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    db = Database.open(url)
    with db.write() as conn:
        conn.execute(Contact.__table__.insert().values(contact_no="C1", type="person", name="A"))
    db.dispose()
    db2 = Database.open(url)
    with db2.read() as conn:
        assert conn.execute(select(Contact.name)).scalar_one() == "A"


def test_sqlite_pragmas(sqlite_db: Database) -> None:
    with sqlite_db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
        # lower() folds every letter, not only ASCII.
        assert conn.exec_driver_sql("SELECT lower('ÉLODIE')").scalar_one() == "élodie"
        # Free text is matched through the folding rule of segcore._fold, registered as a deterministic function.
        folded = conn.exec_driver_sql("SELECT segcore_fold('ÉLODIE Lefèvre, Straße')").scalar_one()
        assert folded == "elodie lefevre, strasse"
        assert conn.exec_driver_sql("SELECT segcore_fold(NULL)").scalar_one() is None


@pytest.mark.parametrize(
    ("given", "expected_prefix"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://"),
        ("postgres://u@h/db", "postgresql+psycopg://"),
        ("sqlite:///x.db", "sqlite:///"),
    ],
)
def test_resolve_url(given: str, expected_prefix: str) -> None:
    assert resolve_url(given).startswith(expected_prefix)


def test_env_var_is_used(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SEGCORE_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert resolve_url(None).endswith("env.db")


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        Database.open("nonsense://")


def test_newer_schema_is_refused(sqlite_db: Database) -> None:
    from segcore._models import SchemaInfo

    with sqlite_db.write() as conn:
        conn.execute(SchemaInfo.__table__.update().values(version=SCHEMA_VERSION + 1))
    with pytest.raises(ConfigError, match="newer"):
        sqlite_db.ensure_schema()


def _back_to_v1(db: Database) -> None:
    """Make a fresh database look like one written by schema version 1 (before custom fields, NULL spends, outcomes)."""
    from sqlalchemy import text

    with db.write() as conn:
        for table in ("audit_log", "users", "outcomes", "custom_values", "import_mappings", "custom_fields"):
            conn.execute(text(f"DROP TABLE {table}"))  # our own table names
        if db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE contacts ALTER COLUMN total_spent SET NOT NULL"))
            conn.execute(text("ALTER TABLE contacts ALTER COLUMN purchase_count SET NOT NULL"))
        else:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'contacts'").scalar_one()
            old = sql.replace("total_spent NUMERIC(14, 2),", "total_spent NUMERIC(14, 2) NOT NULL,").replace(
                "purchase_count INTEGER,", "purchase_count INTEGER NOT NULL,"
            )
            assert old != sql
            version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
            conn.exec_driver_sql("PRAGMA writable_schema = ON")
            conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE name = 'contacts'", (old,))
            conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
            conn.exec_driver_sql("PRAGMA writable_schema = OFF")
        conn.execute(text("UPDATE schema_info SET version = 1"))
        conn.execute(
            Contact.__table__.insert().values(contact_no="OLD", type="person", name="Kept", total_spent=5,
                                              purchase_count=1)
        )


def test_a_version_1_database_migrates_and_keeps_its_data(db: Database) -> None:
    from segcore import fields_of, import_contacts

    _back_to_v1(db)
    with pytest.raises(Exception):  # noqa: B017 - the v1 shape refuses a NULL spend, whatever the driver says
        with db.write() as conn:
            conn.execute(Contact.__table__.insert().values(contact_no="N", type="person", name="N", total_spent=None))
    db.dispose()
    again = Database.open(db.url)
    assert again.schema_version() == SCHEMA_VERSION == 9
    from sqlalchemy import inspect

    with again.read() as conn:
        assert inspect(conn).has_table("outcomes") and inspect(conn).has_table("users")
    report = import_contacts(again, b"contact_no,name,Tier\nNEW,Ann,GOLD\n")
    assert report.inserted == 1 and report.new_fields == ("tier",)
    with again.read() as conn:
        rows = dict(conn.execute(select(Contact.contact_no, Contact.total_spent)).all())
    assert rows == {"OLD": 5.0, "NEW": None}
    assert "tier" in fields_of(again).contact
    again.dispose()


def test_a_version_3_database_migrates_to_accounts_and_keeps_its_data(db: Database) -> None:
    from sqlalchemy import inspect, text

    from segcore import add_user, audit_rows, create_segment, get_segment

    create_segment(db, "KEPT", description="Before accounts", owner="someone")
    with db.write() as conn:
        for table in ("audit_log", "users"):
            conn.execute(text(f"DROP TABLE {table}"))  # our own table names
        conn.execute(text("UPDATE schema_info SET version = 3"))
        conn.execute(Contact.__table__.insert().values(contact_no="OLD", type="person", name="Kept"))
    db.dispose()
    again = Database.open(db.url)
    assert again.schema_version() == SCHEMA_VERSION == 9
    with again.read() as conn:
        assert inspect(conn).has_table("users") and inspect(conn).has_table("audit_log")
        assert conn.execute(select(Contact.name).where(Contact.contact_no == "OLD")).scalar_one() == "Kept"
    info = get_segment(again, "KEPT")
    assert (info.description, info.owner) == ("Before accounts", "someone")
    # No account after the upgrade: the database works as before, and the first account can be made.
    create_segment(again, "NEW", owner="anyone")
    add_user(again, "ada", "admin")
    assert [r.kind for r in audit_rows(again, reader="ada")] == ["user.add", "segment.create"]
    again.dispose()


def _audit_row(db: Database) -> None:
    from segcore._models import AuditEntry

    with db.write() as conn:
        conn.execute(AuditEntry.__table__.insert().values(at=dt.datetime(2026, 1, 1), user="ann", kind="test",
                                                          object="x", summary="kept"))


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET summary = 'changed'", "DELETE FROM audit_log"], ids=["update", "delete"]
)
def test_the_database_itself_refuses_changing_or_deleting_audit_rows(db: Database, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    _audit_row(db)
    with pytest.raises(DBAPIError, match="append-only"):
        with db.write() as conn:
            conn.execute(text(statement))
    with db.read() as conn:
        assert conn.execute(text("SELECT summary FROM audit_log")).scalars().all() == ["kept"]


def test_a_version_4_database_gains_the_append_only_audit_trail(db: Database) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with db.write() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        conn.execute(text("UPDATE schema_info SET version = 4"))
    _audit_row(db)
    with db.write() as conn:  # at version 4 nothing stops it
        conn.execute(text("UPDATE audit_log SET summary = 'kept'"))
    db.dispose()
    again = Database.open(db.url)
    assert again.schema_version() == SCHEMA_VERSION == 9
    with pytest.raises(DBAPIError, match="append-only"):
        with again.write() as conn:
            conn.execute(text("DELETE FROM audit_log"))
    again.dispose()


def test_a_version_5_database_gains_contact_sources_and_keeps_its_segments(db: Database) -> None:
    from sqlalchemy import inspect, text

    from segcore import create_segment, get_segment

    create_segment(db, "KEPT", description="Before sources")
    with db.write() as conn:
        conn.execute(text("DROP TABLE source_contacts"))  # our own names
        conn.execute(text("DROP TABLE sources"))
        conn.execute(text("ALTER TABLE segments DROP COLUMN source"))
        conn.execute(text("UPDATE schema_info SET version = 5"))
    db.dispose()
    again = Database.open(db.url)
    assert again.schema_version() == SCHEMA_VERSION == 9
    with again.read() as conn:
        assert inspect(conn).has_table("sources")
        assert "source" in {c["name"] for c in inspect(conn).get_columns("segments")}
        assert conn.execute(text("SELECT source FROM segments WHERE no = 'KEPT'")).scalar_one() is None
    assert get_segment(again, "KEPT").description == "Before sources"
    again.dispose()


def test_a_version_6_database_gains_source_members_and_keeps_its_members(db: Database) -> None:
    from sqlalchemy import inspect, text

    from segcore import ActionRequest, apply_action, create_segment, member_contact_nos, parse_text

    with db.write() as conn:
        conn.execute(Contact.__table__.insert(), [{"contact_no": f"C{i}", "type": "person", "name": f"N{i}"} for i in range(3)])
    create_segment(db, "KEPT")
    apply_action(db, "KEPT", ActionRequest("add", parse_text("type=person")))
    # Back to the v6 shape: no source_contacts, member tables with their foreign key to contacts.
    with db.write() as conn:
        conn.execute(text("DROP TABLE source_contacts"))  # our own names
        for table in ("segment_members", "logged_segment_members"):
            if db.dialect == "postgresql":
                conn.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT {table}_contact_id_fkey "
                                  "FOREIGN KEY (contact_id) REFERENCES contacts (id)"))
            else:
                sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).scalar_one()
                old = sql.replace("PRIMARY KEY", "FOREIGN KEY(contact_id) REFERENCES contacts (id), \n\tPRIMARY KEY", 1)
                version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
                conn.exec_driver_sql("PRAGMA writable_schema = ON")
                conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE name = ?", (old, table))
                conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
                conn.exec_driver_sql("PRAGMA writable_schema = OFF")
        conn.execute(text("UPDATE schema_info SET version = 6"))
    db.dispose()
    again = Database.open(db.url)
    assert again.schema_version() == SCHEMA_VERSION == 9
    with again.read() as conn:
        assert inspect(conn).has_table("source_contacts")
        for table in ("segment_members", "logged_segment_members"):
            assert [fk for fk in inspect(conn).get_foreign_keys(table) if fk["referred_table"] == "contacts"] == []
        if again.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    assert member_contact_nos(again, "KEPT") == ["C0", "C1", "C2"]
    again.dispose()


def _index_sql(conn, name: str) -> str:
    from sqlalchemy import text

    if conn.dialect.name == "postgresql":
        return conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name}).scalar_one()
    return conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}).scalar_one()


def _plan(conn, stmt) -> str:
    """The query plan of `stmt` as one text (PostgreSQL told not to scan, as it would on a table of three rows)."""
    from sqlalchemy import text

    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(conn.exec_driver_sql(f"EXPLAIN {compiled}").scalars())  # our own statement
    return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))


def test_a_version_7_database_gets_org_and_company_indexes_only_where_set(db: Database) -> None:
    from sqlalchemy import text

    from segcore.evaluation.sql import _org_grown

    contacts = Contact.__table__
    with db.write() as conn:
        conn.execute(contacts.insert(), [
            {"id": 1, "contact_no": "CO", "type": "company", "name": "Co", "company_no": None, "org_id": 1},
            {"id": 2, "contact_no": "P1", "type": "person", "name": "Ann", "company_no": "CO", "org_id": 1},
            {"id": 3, "contact_no": "P2", "type": "person", "name": "Bob", "company_no": None, "org_id": None},
        ])  # fmt: skip
        # Back to the v7 shape: both indexes over every row, NULLs included.
        for name, column in (("ix_contacts_org_id", "org_id"), ("ix_contacts_company_no", "company_no")):
            conn.execute(text(f"DROP INDEX {name}"))  # our own names
            conn.execute(text(f"CREATE INDEX {name} ON contacts ({column})"))
        conn.execute(text("UPDATE schema_info SET version = 7"))
    db.dispose()
    again = Database.open(db.url)
    assert again.schema_version() == SCHEMA_VERSION == 9
    with again.read() as conn:
        assert "org_id IS NOT NULL" in _index_sql(conn, "ix_contacts_org_id")
        assert "company_no IS NOT NULL" in _index_sql(conn, "ix_contacts_company_no")
        rows = conn.execute(select(contacts.c.contact_no, contacts.c.org_id).order_by(contacts.c.id)).all()
        assert [tuple(r) for r in rows] == [("CO", 1), ("P1", 1), ("P2", None)]
        # The lookups still use them: `org_id IN (subquery)` (expand companies) and `company_no = ?` imply NOT NULL.
        grown = _org_grown(select(contacts.c.id).where(contacts.c.contact_no == "P1"))
        assert "ix_contacts_org_id" in _plan(conn, grown)
        assert conn.execute(grown.order_by(contacts.c.id)).scalars().all() == [1, 2]
        by_company = select(contacts.c.id).where(contacts.c.company_no.in_(["CO", "XX"]))
        assert "ix_contacts_company_no" in _plan(conn, by_company)
        if again.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    again.dispose()


def test_a_version_8_database_drops_the_members_segment_key_and_keeps_its_members(db: Database) -> None:
    from sqlalchemy import inspect, text

    from segcore import (
        ActionRequest,
        apply_action,
        create_segment,
        delete_segment,
        member_contact_nos,
        parse_text,
    )
    from segcore._models import SegmentMember

    with db.write() as conn:
        conn.execute(Contact.__table__.insert(), [{"contact_no": f"C{i}", "type": "person", "name": f"N{i}"} for i in range(3)])
    for no in ("KEPT", "GONE"):
        create_segment(db, no)
        apply_action(db, no, ActionRequest("add", parse_text("type=person")))
    # Back to the v8 shape: members with their foreign key to segments (ON DELETE CASCADE).
    with db.write() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE segment_members ADD CONSTRAINT segment_members_segment_id_fkey "
                              "FOREIGN KEY (segment_id) REFERENCES segments (id) ON DELETE CASCADE"))
        else:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'segment_members'").scalar_one()
            old = sql.replace("PRIMARY KEY (segment_id, contact_id)", "PRIMARY KEY (segment_id, contact_id), \n\t"
                              "FOREIGN KEY(segment_id) REFERENCES segments (id) ON DELETE CASCADE", 1)
            assert old != sql
            version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
            conn.exec_driver_sql("PRAGMA writable_schema = ON")
            conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE name = 'segment_members'", (old,))
            conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
            conn.exec_driver_sql("PRAGMA writable_schema = OFF")
        conn.execute(text("UPDATE schema_info SET version = 8"))
    db.dispose()
    again = Database.open(db.url)
    assert again.schema_version() == SCHEMA_VERSION == 9
    with again.read() as conn:
        assert inspect(conn).get_foreign_keys("segment_members") == []
        if again.dialect == "sqlite":
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    assert member_contact_nos(again, "KEPT") == ["C0", "C1", "C2"]
    # Without the cascade, deleting a segment still takes its members with it (the engine deletes them).
    delete_segment(again, "GONE")
    with again.read() as conn:
        assert conn.execute(select(func.count()).select_from(SegmentMember)).scalar_one() == 3
    again.dispose()
