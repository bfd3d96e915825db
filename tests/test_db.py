from __future__ import annotations

import pytest
from sqlalchemy import func, select

from segcore import ConfigError, Database, resolve_url
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
