"""Shared fixtures: a fresh database on SQLite and on PostgreSQL for every storage test.

PostgreSQL comes from SEGCORE_TEST_PG_URL (scripts/test starts a throwaway cluster and sets it). Each pytest run gets
its own database on that server, so parallel runs do not meet. On a developer's machine without a server the
PostgreSQL cases are skipped; under CI=true a missing server fails the run instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from segcore._db import Database
from segcore._models import Base

pytest_plugins = ["tests.apptest_support", "tests.spark_support"]

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("SEGCORE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:54329/postgres")


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true", pytrace=False)
    pytest.skip(f"{what} not available on this machine")


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A database of its own on the PostgreSQL test server, dropped at the end of the run."""
    admin_url = make_url(PG_URL)
    name = f"segtest_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))  # name is ours, not user input
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "no server here"
        _missing(f"PostgreSQL at {admin_url.render_as_string()} ({type(exc).__name__})")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    Database.open(url).dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_all(db: Database) -> None:
    # The database is reset in place under the same URL: forget what the process cached about it.
    from segcore._preview import clear_caches
    from segcore._snapshot import drop_cached

    drop_cached()
    clear_caches()
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.write() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    # Put back what ensure_schema writes on a fresh database.
    with db.write() as conn:
        from segcore._db import DEFAULT_SETTINGS
        from segcore._models import SCHEMA_VERSION, SchemaInfo, Setting

        conn.execute(SchemaInfo.__table__.insert().values(id=1, version=SCHEMA_VERSION))
        for key, value in DEFAULT_SETTINGS.items():
            conn.execute(Setting.__table__.insert().values(key=key, value=value))


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path) -> Iterator[Database]:
    """A fresh, empty database with the schema, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        database = Database.open(f"sqlite:///{tmp_path / 'test.db'}")
    else:
        url = request.getfixturevalue("pg_server_url")
        database = Database.open(url, create=False)
        _truncate_all(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path) -> Iterator[Database]:
    """A fresh SQLite database, for tests about SQLite alone."""
    database = Database.open(f"sqlite:///{tmp_path / 'test.db'}")
    yield database
    database.dispose()
