"""One SparkSession per Spark URL, started on first use and kept for the life of the process.

A URL is `local`, `local[N]` or `local[*]` (a Spark inside this process, for one machine and for tests) or a Spark
Connect address `sc://host:port` (a real cluster; the driver runs there, this process is a thin client). Starting a
local session takes several seconds, so it is made once and shared; only one local Spark may run in a process.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError
from .errors import SparkUnavailable

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkUrl", "is_connect", "parse_spark_url", "quiet", "spark_session", "stop_sessions"]

_LOCAL = re.compile(r"local(\[(\d+|\*)\])?")
_CONNECT = re.compile(r"sc://([^:/\s]+)(?::(\d+))?(/.*)?")
DEFAULT_CONNECT_PORT = 15002
# A local session is for one machine and the tests: a small driver, few shuffle partitions, no web UI.
LOCAL_CONF = {
    "spark.driver.memory": "1g",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}

_lock = threading.Lock()
_sessions: dict[str, Any] = {}


@contextmanager
def quiet() -> Iterator[None]:
    """pyspark 4 warns on every pandas 3 it meets (FutureWarning), even where no pandas is used: not our users' news."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        yield


@dataclass(frozen=True)
class SparkUrl:
    """A parsed Spark URL: `local[N]` (cores None for all of them) or a Spark Connect host and port."""

    text: str
    local: bool
    cores: int | None = None
    host: str = ""
    port: int = 0


def parse_spark_url(url: str) -> SparkUrl:
    """Check a Spark URL's form (ConfigError when it is neither `local[N]` nor `sc://host:port`)."""
    text = (url or "").strip()
    m = _LOCAL.fullmatch(text)
    if m:
        cores = None if m.group(2) in (None, "*") else int(m.group(2))
        if cores == 0:
            raise ConfigError("local[0] has no cores: use local[1] or more")
        return SparkUrl(text, True, cores)
    m = _CONNECT.fullmatch(text)
    if m:
        return SparkUrl(text, False, host=m.group(1), port=int(m.group(2) or DEFAULT_CONNECT_PORT))
    raise ConfigError(f"{text!r} is not a Spark URL: use local[N] or a Spark Connect address sc://host:port")


def _check_pyspark(connect: bool) -> None:
    if importlib.util.find_spec("pyspark") is None:
        raise SparkUnavailable("pyspark is not installed: pip install 'pyspark[connect]>=4.0'")
    if connect and importlib.util.find_spec("grpc") is None:
        raise SparkUnavailable("Spark Connect needs pyspark's connect extra: pip install 'pyspark[connect]>=4.0'")


def _check_java() -> None:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return
    if shutil.which("java") is None:
        raise SparkUnavailable(
            "a local Spark needs Java 17 or later, and none was found (install openjdk-17-jre-headless or set JAVA_HOME)"
        )


def _check_reachable(url: SparkUrl, timeout: float = 3.0) -> None:
    try:
        with socket.create_connection((url.host, url.port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SparkUnavailable(f"cannot reach the Spark Connect server {url.host}:{url.port}: {reason}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def spark_session(url: str) -> SparkSession:
    """The session for `url`, started on first use (SparkUnavailable, one line, when it cannot be)."""
    parsed = parse_spark_url(url)
    key = parsed.text
    with _lock, quiet():
        session = _sessions.get(key)
        if session is not None and _alive(session):
            return session
        _check_pyspark(connect=not parsed.local)
        if parsed.local:
            session = _start_local(parsed)
        else:
            _check_reachable(parsed)
            session = _start_connect(parsed)
        _sessions[key] = session
        return session


def _alive(session: Any) -> bool:
    try:
        jsc = getattr(session, "_jsc", None)
        return jsc is None or not jsc.sc().isStopped()
    except Exception:  # noqa: BLE001 - a session whose JVM is gone is simply not alive
        return False


def _start_local(url: SparkUrl) -> SparkSession:
    _check_java()
    from pyspark.sql import SparkSession

    running = SparkSession.getActiveSession()
    if running is not None and _alive(running):
        master = running.sparkContext.master
        if master != url.text:
            raise SparkUnavailable(f"a local Spark {master} already runs in this process: {url.text} cannot start beside it")
        return running
    builder = SparkSession.builder.master(url.text).appName("segment-explorer")
    for k, v in LOCAL_CONF.items():
        builder = builder.config(k, v)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - the JVM's failure, reported in one line
        raise SparkUnavailable(f"the local Spark {url.text} did not start: {_one_line(exc)}") from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def _start_connect(url: SparkUrl) -> SparkSession:
    # The Connect client's own builder: pyspark's generic one refuses a remote session in a process that already
    # runs a local Spark, and its getOrCreate would hand back the session of another URL.
    from pyspark.sql.connect.session import SparkSession as RemoteSession

    try:
        session = RemoteSession.builder.remote(url.text).create()
        session.sql("SELECT 1").collect()
    except Exception as exc:  # noqa: BLE001 - the server's failure, reported in one line
        raise SparkUnavailable(f"the Spark Connect server {url.host}:{url.port} refused the session: {_one_line(exc)}") from None
    return session  # type: ignore[return-value]


def is_connect(session: Any) -> bool:
    """True for a Spark Connect session (its DataFrames take the Connect client's column functions)."""
    return type(session).__module__.startswith("pyspark.sql.connect")


def stop_sessions(url: str | None = None) -> None:
    """Stop the session of `url`, or every session this process started (tests, and a clean exit)."""
    with _lock:
        keys = list(_sessions) if url is None else [k for k in _sessions if k == parse_spark_url(url).text]
        for key in keys:
            try:
                _sessions.pop(key).stop()
            except Exception:  # noqa: BLE001, S110 - stopping is best effort
                pass
