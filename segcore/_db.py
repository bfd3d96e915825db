"""Opening the database: URL resolution, SQLite pragmas, transactions, schema version and migrations."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import StaticPool

from ._errors import ConfigError
from ._fold import SQLITE_FUNCTION, fold_or_none
from ._models import SCHEMA_VERSION, Base, SchemaInfo, Setting, table_of
from ._setting_specs import DEFAULT_SETTINGS

__all__ = ["DEFAULT_DB_PATH", "Database", "after_commit", "default_url", "resolve_url"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = PROJECT_ROOT / "data" / "segments.db"
ENV_VAR = "SEGCORE_DATABASE_URL"

# Versioned migration steps: MIGRATIONS[n] takes a database from version n-1 to n inside one transaction.
# A small ordered scheme instead of Alembic: the schema is created whole from the models on a fresh database,
# so only in-place upgrades need code, and they stay next to the version number they belong to.
def _to_v2(conn: Connection) -> None:
    """Custom fields, their values and saved import mappings; total_spent and purchase_count may be NULL (not set)."""
    Base.metadata.create_all(
        conn,
        tables=[Base.metadata.tables[n] for n in ("custom_fields", "custom_values", "import_mappings")],
        checkfirst=True,
    )
    if conn.dialect.name == "postgresql":
        for column in ("total_spent", "purchase_count"):
            conn.execute(text(f"ALTER TABLE contacts ALTER COLUMN {column} DROP NOT NULL"))  # our names
        return
    # SQLite cannot ALTER a column's NOT NULL away; its documented way is to edit the stored CREATE TABLE text
    # (https://sqlite.org/lang_altertable.html, "removing NOT NULL constraints") inside the transaction.
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'contacts'").scalar_one()
    new_sql = re.sub(r"(total_spent NUMERIC\(14, 2\)|purchase_count INTEGER) NOT NULL", r"\1", sql)
    if new_sql != sql:
        version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
        conn.exec_driver_sql("PRAGMA writable_schema = ON")
        conn.exec_driver_sql(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'contacts'", (new_sql,)
        )
        conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _to_v3(conn: Connection) -> None:
    """Outcomes (orders, sign-ups...) per contact and date, which campaign results measure."""
    Base.metadata.create_all(conn, tables=[Base.metadata.tables["outcomes"]], checkfirst=True)


def _to_v4(conn: Connection) -> None:
    """Accounts (users) and the append-only audit trail; a database without accounts keeps working as before."""
    Base.metadata.create_all(
        conn, tables=[Base.metadata.tables[n] for n in ("users", "audit_log")], checkfirst=True
    )


# The audit trail is append-only in the database itself, not only in segcore: a script or a SQL console that
# tries to change or delete a row is refused by the database. (TRUNCATE stays possible on PostgreSQL: it needs its
# own privilege, which an application role is not given, and test set-ups use it.)
_AUDIT_REFUSAL = "the audit trail is append-only: its rows cannot be changed or deleted"
_AUDIT_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{_AUDIT_REFUSAL}'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{_AUDIT_REFUSAL}'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{_AUDIT_REFUSAL}'; END $$",
        "DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log",
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    ],
}


def _audit_append_only(conn: Connection) -> None:
    for statement in _AUDIT_TRIGGERS.get(conn.dialect.name, []):
        conn.exec_driver_sql(statement)  # constant text: no user input


def _to_v5(conn: Connection) -> None:
    """The audit trail refuses UPDATE and DELETE in the database itself (triggers)."""
    _audit_append_only(conn)


def _to_v6(conn: Connection) -> None:
    """Contact sources (Spark tables or Parquet/CSV locations) and the source each segment is built over."""
    Base.metadata.create_all(conn, tables=[Base.metadata.tables["sources"]], checkfirst=True)
    columns = {c["name"] for c in inspect(conn).get_columns("segments")}
    if "source" not in columns:
        conn.execute(text("ALTER TABLE segments ADD COLUMN source VARCHAR(60)"))  # our names, no user input


def _drop_fk(conn: Connection, table: str, column: str, referred: str) -> None:
    """Drop `table`'s foreign key from `column` to `referred`.id (names are our own constants)."""
    if conn.dialect.name == "postgresql":
        for fk in inspect(conn).get_foreign_keys(table):
            if fk["referred_table"] == referred and fk["constrained_columns"] == [column] and fk.get("name"):
                conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{fk["name"]}"')  # names from the catalog
        return
    # SQLite cannot drop a constraint; its documented way is to edit the stored CREATE TABLE text (as in _to_v2),
    # which takes no time on a table of millions of members where a rebuild would copy them all.
    sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).scalar_one()
    pattern = rf",\s*FOREIGN KEY\s*\(\s*{column}\s*\)\s*REFERENCES\s+{referred}\s*\(\s*id\s*\)(\s*ON DELETE CASCADE)?"
    new_sql = re.sub(pattern, "", sql)
    if new_sql != sql:
        version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
        conn.exec_driver_sql("PRAGMA writable_schema = ON")
        conn.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (new_sql, table))
        conn.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
        conn.exec_driver_sql("PRAGMA writable_schema = OFF")


def _to_v7(conn: Connection) -> None:
    """Members of segments built over a source: the source's contacts they name (`source_contacts`), member tables
    whose contact ids are no longer always contacts.id, and the source a dynamic segment counts."""
    Base.metadata.create_all(conn, tables=[Base.metadata.tables["source_contacts"]], checkfirst=True)
    for table in ("segment_members", "logged_segment_members"):
        _drop_fk(conn, table, "contact_id", "contacts")
    if "source" not in {c["name"] for c in inspect(conn).get_columns("dynamic_segments")}:
        conn.execute(text("ALTER TABLE dynamic_segments ADD COLUMN source VARCHAR(60)"))  # our names, no user input


def _to_v8(conn: Connection) -> None:
    """contacts.org_id and contacts.company_no indexed only where set (partial indexes): both are NULL for every
    contact without a company, and a bulk import rebuilt a million NULL entries for nothing."""
    contacts = Base.metadata.tables["contacts"]
    for ix in sorted(contacts.indexes, key=lambda i: i.name or ""):
        if ix.name in ("ix_contacts_org_id", "ix_contacts_company_no"):
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {ix.name}")  # our own index names
            ix.create(conn)


def _to_v9(conn: Connection) -> None:
    """Member rows without a foreign key to their segment: PostgreSQL checked it with a trigger call per row (36 of
    the 52 s of a 3M-member Add at ten million contacts). The engine writes segment_id only from the segment row it
    holds locked, and deleting a segment deletes its members in the same transaction."""
    _drop_fk(conn, "segment_members", "segment_id", "segments")


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _to_v2, 3: _to_v3, 4: _to_v4, 5: _to_v5, 6: _to_v6, 7: _to_v7, 8: _to_v8, 9: _to_v9,
}



_AFTER_COMMIT = "segcore_after_commit"


def after_commit(conn: Connection, fn: Callable[[], None]) -> None:
    """Run `fn` once the write transaction of `conn` (from `Database.write`) has committed; never if it rolls back.

    For caches, which may only learn what is durable: an id or a version seen in a rolled-back transaction comes
    again with other contents."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(fn)


def default_url() -> str:
    return f"sqlite:///{DEFAULT_DB_PATH}"


def resolve_url(url: str | None = None) -> str:
    """The URL to use: the argument, else SEGCORE_DATABASE_URL, else the embedded SQLite file."""
    chosen = url or os.environ.get(ENV_VAR) or default_url()
    try:
        parsed = make_url(chosen)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {chosen!r}") from exc
    # A bare postgresql:// would pick psycopg2, which we do not ship; psycopg 3 is the driver we install.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


_PAGE_SIZE = 16384


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event emit BEGIN itself, so a write transaction can take the write lock up front.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # 16 KB pages for a database this creates (before journal_mode writes its first page; a no-op on an existing
    # file, which keeps its page size): a million-contact import writes and checkpoints a quarter of the pages.
    cur.execute(f"PRAGMA page_size={_PAGE_SIZE:d}")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute("PRAGMA cache_size=-262144")
    cur.execute("PRAGMA mmap_size=1073741824")
    cur.close()
    # SQLite's built-in lower() folds ASCII only; filters promise case-insensitive matching for every letter.
    dbapi_conn.create_function("lower", 1, _py_lower, deterministic=True)
    # Free text matches regardless of case and accents: the very Python rule the in-memory path uses (_fold).
    dbapi_conn.create_function(SQLITE_FUNCTION, 1, fold_or_none, deterministic=True)


def _py_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_on_begin(conn: Connection) -> None:
    # BEGIN IMMEDIATE takes the write lock at the start: two writers queue instead of deadlocking on upgrade.
    if conn.get_execution_options().get("segcore_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


# SQLite's default: a commit that leaves this many pages in the WAL checkpoints them into the database file.
_WAL_AUTOCHECKPOINT = 1000


def _restore_pragmas(conn: Connection, raw: Any, *, foreign_keys: bool, checkpoint: bool) -> None:
    """Foreign keys and automatic checkpoints back on for a pooled connection; one that cannot be checked to have
    them is discarded."""
    try:
        restored = True
        if not foreign_keys:
            raw.execute("PRAGMA foreign_keys=ON")
            restored = raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        if not checkpoint:
            raw.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT:d}")
            restored = restored and raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == _WAL_AUTOCHECKPOINT
    except Exception:
        restored = False
    if not restored:
        conn.invalidate()


@dataclass
class Database:
    """An open database: the engine plus the transaction helpers every action goes through."""

    url: str
    engine: Engine
    # Checkpoints that write(checkpoint_later=True) started and dispose() waits for.
    _checkpoints: list[threading.Thread] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def open(cls, url: str | None = None, *, create: bool = True) -> Database:
        resolved = resolve_url(url)
        parsed = make_url(resolved)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            if not database or database == ":memory:":
                # An in-memory database lives in its one connection.
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            # File databases keep SQLAlchemy's default pool: a pooled connection keeps its page cache warm,
            # which a 300k-member step notices.
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(resolved, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise ConfigError(f"cannot use database URL {parsed.render_as_string()}: {exc}") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
        db = cls(url=resolved, engine=engine)
        if create:
            db.ensure_schema()
        return db

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self, *, foreign_keys: bool = True, checkpoint_later: bool = False) -> Iterator[Connection]:
        """One write transaction: committed whole on success, rolled back whole on any exception.

        `foreign_keys=False` (SQLite only; ignored elsewhere) skips the per-row foreign-key checks for this one
        transaction: for a bulk load whose references are right by construction, where the checks cost seconds.
        `checkpoint_later=True` (SQLite file databases only) returns once the COMMIT is in the WAL and copies the
        WAL into the database file right after, on a thread of its own, instead of inside the COMMIT: for a bulk
        load whose hundreds of MB make that copy take seconds. The data is committed either way (a reader sees it
        from the WAL, and a crash keeps it), as with SQLite's own automatic checkpoint, which is the same passive
        checkpoint run by the committing connection. The connection gets both back before it returns to the pool,
        or is discarded."""
        later = checkpoint_later and self._file_sqlite()
        with self.engine.connect() as conn:
            # preserve_rowcount: actions report how many rows INSERT ... SELECT wrote (SQLAlchemy 2.1 drops it
            # for INSERT unless asked).
            # segcore_db_url: which database this is, for a commit that looks for this process's snapshot of it.
            conn.execution_options(segcore_write=True, segcore_db_url=self.url, preserve_rowcount=True)
            conn.info.pop(_AFTER_COMMIT, None)
            try:
                with self._begin(conn, foreign_keys=foreign_keys, later=later):
                    yield conn
            except BaseException:
                conn.info.pop(_AFTER_COMMIT, None)
                raise
            callbacks = conn.info.pop(_AFTER_COMMIT, ())
        if later:
            self._checkpoint_soon()
        for fn in callbacks:
            fn()

    @contextmanager
    def _begin(self, conn: Connection, *, foreign_keys: bool, later: bool) -> Iterator[None]:
        """BEGIN ... COMMIT on `conn` (ROLLBACK on an exception), with SQLite's pragmas for a bulk load if asked."""
        if self.dialect != "sqlite" or (foreign_keys and not later):
            with conn.begin():
                yield
            return
        # SQLite ignores PRAGMA foreign_keys inside a transaction, so it is set on the driver connection
        # before BEGIN (through SQLAlchemy it would autobegin first) and restored after COMMIT/ROLLBACK.
        raw: Any = conn.connection.dbapi_connection
        if not foreign_keys:
            raw.execute("PRAGMA foreign_keys=OFF")
        if later:
            raw.execute("PRAGMA wal_autocheckpoint=0")
        try:
            with conn.begin():
                yield
        finally:
            _restore_pragmas(conn, raw, foreign_keys=foreign_keys, checkpoint=not later)

    def _file_sqlite(self) -> bool:
        database = make_url(self.url).database if self.dialect == "sqlite" else None
        # An in-memory database has no WAL, and its one connection is shared: nothing to hand to a thread.
        return bool(database) and database != ":memory:" and not str(database).startswith("file::memory:")

    def _checkpoint_soon(self) -> None:
        """A passive checkpoint (what SQLite runs after a commit that leaves a big WAL) on a thread of its own."""

        def run() -> None:
            try:
                raw: Any = self.engine.raw_connection()
                try:
                    raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                finally:
                    raw.close()
            except Exception:  # noqa: BLE001, S110 - the next commit's automatic checkpoint does it instead
                pass

        self._checkpoints[:] = [t for t in self._checkpoints if t.is_alive()]
        thread = threading.Thread(target=run, name="segcore-checkpoint")
        thread.start()
        self._checkpoints.append(thread)

    def wait_checkpoints(self) -> None:
        """Wait for the checkpoints write(checkpoint_later=True) started."""
        for thread in list(self._checkpoints):
            thread.join()
        self._checkpoints.clear()

    @contextmanager
    def scratch(self) -> Iterator[Connection]:
        """A write transaction that is always rolled back: "what if" work (a replay) that must leave no trace."""
        with self.engine.connect() as conn:
            # segcore_scratch: nothing done here is kept, so permission checks let it through (auth.roles.require).
            conn.execution_options(segcore_write=True, preserve_rowcount=True, segcore_scratch=True)
            trans = conn.begin()
            try:
                yield conn
            finally:
                trans.rollback()
                conn.info.pop(_AFTER_COMMIT, None)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction with a consistent view."""
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    def ensure_schema(self) -> int:
        """Create the schema on an empty database, or migrate an older one; returns the version."""
        try:
            with self.write() as conn:
                has_info = inspect(conn).has_table(SchemaInfo.__tablename__)
                if not has_info:
                    Base.metadata.create_all(conn)
                    _audit_append_only(conn)
                    conn.execute(table_of(SchemaInfo).insert().values(id=1, version=SCHEMA_VERSION))
                    for key, value in DEFAULT_SETTINGS.items():
                        conn.execute(table_of(Setting).insert().values(key=key, value=value))
                    return SCHEMA_VERSION
                version = conn.execute(select(SchemaInfo.version)).scalar_one()
                if version > SCHEMA_VERSION:
                    raise ConfigError(
                        f"the database is at schema version {version}, newer than this program ({SCHEMA_VERSION})"
                    )
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[step](conn)
                    conn.execute(table_of(SchemaInfo).update().values(version=step))
                return SCHEMA_VERSION
        except OperationalError as exc:
            raise ConfigError(f"cannot open the database: {exc.orig}") from exc

    def schema_version(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(SchemaInfo.version)).scalar_one())

    def dispose(self) -> None:
        self.wait_checkpoints()
        self.engine.dispose()
