"""Spark Connect for real: a Spark Connect server started from pyspark's own scripts (local[1]) on a free port,
a source added through `sc://127.0.0.1:PORT`, and its answers equal to the SQLite path."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from segcore._db import Database
from segcore._filter_sql import matching_ids
from segcore._filter_tree import from_json
from segcore.cli import main
from tests import test_filter_sql as scen
from tests.spark_support import export_source, spark_available


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server (local[1], 512 MB) for this module, stopped at its end."""
    spark_available()
    import pyspark

    home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("spark_connect")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(folder), "SPARK_PID_DIR": str(folder),
           "SPARK_IDENT_STRING": f"segtest{os.getpid()}"}  # fmt: skip
    port = _free_port()
    subprocess.run(
        [str(home / "sbin" / "start-connect-server.sh"), "--master", "local[1]",
         "--conf", f"spark.connect.grpc.binding.port={port}", "--conf", "spark.driver.memory=512m",
         "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=2"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    logs = "".join(p.read_text(errors="replace")[-2000:] for p in folder.glob("*.out"))
                    pytest.fail(f"the Spark Connect server did not start: {logs}")
                time.sleep(1)
        yield f"sc://127.0.0.1:{port}"
    finally:
        from segcore.spark import stop_sessions

        stop_sessions(f"sc://127.0.0.1:{port}")  # the client first, so it does not retry a server that is gone
        subprocess.run([str(home / "sbin" / "stop-connect-server.sh")], env=env, capture_output=True)


def test_a_source_through_spark_connect(
    connect_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = Database.open(f"sqlite:///{tmp_path / 'world.db'}")
    scen._fill(world)
    contacts_path, interactions_path = export_source(world, tmp_path / "source")
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert main(["--db", url, "source", "add", "REMOTE", "--spark", connect_url, "--path", str(contacts_path),
                 "--interactions-path", str(interactions_path)]) == 0, capsys.readouterr().err  # fmt: skip
    assert main(["--db", url, "source", "show", "REMOTE"]) == 0
    assert f"{len(scen.CONTACTS)} contacts" in capsys.readouterr().out

    from segcore.spark import open_stored_source

    app = Database.open(url)
    source = open_stored_source(app, "REMOTE")
    app.dispose()
    params = scen.CASES[:15]
    got = source.matched_ids_many([from_json(p.values[0]) for p in params], today=scen.TODAY)
    for p, ids in zip(params, got, strict=True):
        want = scen.found(world, from_json(p.values[0]))
        assert set(ids) == want == p.values[1], p.id
    node = from_json(scen.c("name", "contains", "mü"))
    assert source.count(node, today=scen.TODAY).matched == 1
    scan = source.step_scan("add", node, ["P2"], today=scen.TODAY)
    assert (scan.before, scan.after, scan.entering) == (1, 2, 1)
    assert source.distributions(node, today=scen.TODAY)["country"].counts == {"FR": 1}
    with world.read() as conn:
        assert len(conn.execute(matching_ids(node, today=scen.TODAY)).all()) == 1
    world.dispose()


def test_a_server_that_stopped_answering_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spark_available()
    port = _free_port()  # nothing listens there
    url = f"sqlite:///{tmp_path / 'app.db'}"
    code = main(["--db", url, "source", "add", "GONE", "--spark", f"sc://127.0.0.1:{port}", "--table", "t"])
    err = capsys.readouterr().err
    assert code == 1 and err == f"error: cannot reach the Spark Connect server 127.0.0.1:{port}: Connection refused\n"
