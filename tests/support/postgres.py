"""A throwaway PostgreSQL cluster for the test suite.

The cluster is built from the machine's PostgreSQL server binaries (``initdb``,
``pg_ctl``, ``postgres``), listens on a free port on 127.0.0.1 with ``trust``
authentication for the ``postgres`` superuser, and is tuned for speed rather
than durability (``fsync=off`` and friends).  It is meant to live for one
pytest session (or one test) and be thrown away with :meth:`PostgresCluster.stop`.

PostgreSQL refuses to run as root.  When the tests run as root (as they do in
CI) the server tools are run through ``runuser -u postgres --`` and the
cluster directory is handed over to the ``postgres`` user.  If the requested
base directory cannot be reached by that user (pytest's ``tmp_path`` lives
under a 0700 ``/tmp/pytest-of-root``), the cluster is created in a
world-traversable temporary directory instead and removed again on stop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresCluster", "PostgresError", "find_pg_bindir"]

SERVER_USER = "postgres"
"""The OS user the server runs as when the tests run as root; also the database superuser name."""

DB_SUPERUSER = "postgres"
HOST = "127.0.0.1"

# A unix socket path is limited to 107 bytes on Linux; the socket file itself
# is named ".s.PGSQL.<port>" (up to 15 characters plus the separator).
_MAX_SOCKET_DIR_LEN = 90

_SERVER_SETTINGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"

_NOT_FOUND_MESSAGE = (
    "PostgreSQL server binaries not found: install postgresql (Debian/Ubuntu: `apt-get install "
    "postgresql`; the server binaries live in /usr/lib/postgresql/<version>/bin), or put a directory "
    "containing initdb, pg_ctl and postgres on PATH. Looked at `pg_config --bindir`, "
    "/usr/lib/postgresql/*/bin and `initdb` on PATH."
)


class PostgresError(RuntimeError):
    """A PostgreSQL tool or statement failed; the message carries the details."""


# --------------------------------------------------------------------------- binaries


def _is_server_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres"))


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (-1,)


def find_pg_bindir() -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Tried in order: ``pg_config --bindir``; the newest ``/usr/lib/postgresql/*/bin``
    (Debian layout); the directory of ``initdb`` found on PATH (symlinks resolved).
    Raises :class:`RuntimeError` when none of them holds the server binaries.
    """
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            result = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=False
            )
            if result.returncode == 0 and result.stdout.strip():
                candidate = Path(result.stdout.strip())
                if _is_server_bindir(candidate):
                    return candidate

    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _is_server_bindir(Path(found)):
            return Path(found)

    initdb = shutil.which("initdb")
    if initdb:
        for candidate in (Path(initdb).resolve().parent, Path(initdb).parent):
            if _is_server_bindir(candidate):
                return candidate

    raise RuntimeError(_NOT_FOUND_MESSAGE)


# --------------------------------------------------------------------------- helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _quote_ident(name: str) -> str:
    if not name or "\x00" in name:
        raise ValueError(f"invalid database name: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(log file {path} unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log file is empty)"


def _clean_env() -> dict[str, str]:
    """The current environment minus libpq/server variables that could redirect the tools."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _traversable_by(path: Path, uid: int, gids: set[int]) -> bool:
    """True if the user ``uid`` (groups ``gids``) can search every directory down to ``path``."""
    path = path.resolve()
    for directory in (path, *path.parents):
        try:
            st = directory.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


# --------------------------------------------------------------------------- the cluster


class PostgresCluster:
    """A disposable PostgreSQL cluster under ``base_dir`` (see the module docstring).

    ``start()`` runs initdb and starts the server; ``stop()`` shuts it down with
    ``-m immediate`` and deletes everything it created.  Also usable as a context manager.
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self._bindir: Path | None = None
        self._port: int | None = None
        self._cluster_dir: Path | None = None
        self._socket_dir: Path | None = None
        self._extra_dirs: list[Path] = []
        self._running = False
        self._as_root = os.geteuid() == 0
        self.start_seconds: float | None = None
        """Wall-clock time the last successful :meth:`start` took."""

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        if self._port is None or not self._running:
            raise RuntimeError("PostgresCluster is not running; call start() first")
        return self._port

    @property
    def host(self) -> str:
        return HOST

    @property
    def cluster_dir(self) -> Path:
        if self._cluster_dir is None:
            raise RuntimeError("PostgresCluster has not been started")
        return self._cluster_dir

    @property
    def data_dir(self) -> Path:
        return self.cluster_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.cluster_dir / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        if self._socket_dir is None:
            raise RuntimeError("PostgresCluster has not been started")
        return self._socket_dir

    @property
    def running(self) -> bool:
        return self._running

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        """SQLAlchemy URL, e.g. ``postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres``.

        Pass ``driver=""`` for a plain ``postgresql://`` (libpq-style) URL.
        """
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{DB_SUPERUSER}@{HOST}:{self.port}/{database}"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """initdb a fresh cluster and start it on a free 127.0.0.1 port (blocks until ready)."""
        if self._running:
            raise RuntimeError("PostgresCluster is already running")
        started = time.monotonic()
        self._bindir = find_pg_bindir()
        try:
            self._prepare_dirs()
            self._initdb()
            self._start_server()
        except BaseException:
            self._running = True  # let stop() try pg_ctl stop in case the server did come up
            self.stop()
            raise
        atexit.register(self._stop_at_exit)
        self.start_seconds = time.monotonic() - started

    def stop(self) -> None:
        """``pg_ctl stop -m immediate`` and remove the cluster directory.  Safe to call twice."""
        atexit.unregister(self._stop_at_exit)
        if self._running and self._cluster_dir is not None and (self.data_dir / "PG_VERSION").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run_server_tool(
                    ["pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "60", "stop"],
                    timeout=90,
                )
        self._running = False
        for directory in (self._cluster_dir, self._socket_dir, *self._extra_dirs):
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
        self._cluster_dir = None
        self._socket_dir = None
        self._extra_dirs = []

    def _stop_at_exit(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ databases

    def create_database(self, name: str, template: str | None = None) -> None:
        """CREATE DATABASE ``name`` (optionally ``TEMPLATE template``).

        Synchronous and loop-free, so it can be called from inside a running event loop.
        Creating from a template fails while anyone is connected to the template; this
        retries for a few seconds to let just-closed connections go away.
        """
        sql = f"CREATE DATABASE {_quote_ident(name)}"
        if template is not None:
            sql += f" TEMPLATE {_quote_ident(template)}"
        deadline = time.monotonic() + 10
        while True:
            try:
                self.execute(sql)
                return
            except PostgresError as exc:
                if "being accessed by other users" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS ``name``, terminating any sessions still connected to it."""
        self.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")

    def execute(self, sql: str, database: str = "postgres") -> None:
        """Run SQL as the superuser with ``psql`` (or asyncpg in a private thread if psql is missing)."""
        if not self._running:
            raise RuntimeError("PostgresCluster is not running; call start() first")
        psql = self._find_psql()
        if psql is not None:
            self._execute_psql(psql, sql, database)
        else:
            self._execute_asyncpg(sql, database)

    def _find_psql(self) -> str | None:
        if self._bindir is not None and os.access(self._bindir / "psql", os.X_OK):
            return str(self._bindir / "psql")
        return shutil.which("psql")

    def _execute_psql(self, psql: str, sql: str, database: str) -> None:
        command = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(self.port)]
        command += ["-U", DB_SUPERUSER, "-d", database, "-c", sql]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=120, env=_clean_env(), check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"psql timed out running {sql!r}") from exc
        if result.returncode != 0:
            raise PostgresError(f"psql failed running {sql!r}: {(result.stderr or result.stdout).strip()}")

    def _execute_asyncpg(self, sql: str, database: str) -> None:
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(
                host=HOST, port=self.port, user=DB_SUPERUSER, database=database, timeout=10
            )
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        # A fresh loop in a worker thread: works whether or not the caller is inside a loop.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(lambda: asyncio.run(run()))
            try:
                future.result(timeout=120)
            except asyncpg.PostgresError as exc:
                raise PostgresError(f"running {sql!r} failed: {exc}") from exc

    # ------------------------------------------------------------------ internals

    def _server_user_ids(self) -> tuple[int, int, set[int]]:
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError as exc:
            raise RuntimeError(
                f"running as root, but there is no {SERVER_USER!r} OS user to run PostgreSQL as "
                "(PostgreSQL refuses to run as root); create it or run the tests as a normal user"
            ) from exc
        gids = {entry.pw_gid, *os.getgrouplist(SERVER_USER, entry.pw_gid)}
        return entry.pw_uid, entry.pw_gid, gids

    def _make_dir_for_server(self, parent: Path, prefix: str) -> Path:
        directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        if self._as_root:
            uid, gid, _ = self._server_user_ids()
            os.chown(directory, uid, gid)
        return directory

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        parent = self.base_dir
        if self._as_root:
            uid, _, gids = self._server_user_ids()
            if not _traversable_by(parent, uid, gids):
                # e.g. pytest's tmp_path under a 0700 /tmp/pytest-of-root: the postgres user
                # cannot reach it, so live in a world-traversable temp dir instead.
                parent = self._world_traversable_tmp(uid, gids)
        self._cluster_dir = self._make_dir_for_server(parent, "pg-")
        socket_dir = self._cluster_dir / "sock"
        if len(str(socket_dir)) <= _MAX_SOCKET_DIR_LEN:
            socket_dir.mkdir()
            if self._as_root:
                uid, gid, _ = self._server_user_ids()
                os.chown(socket_dir, uid, gid)
            self._socket_dir = socket_dir
        else:
            self._socket_dir = self._make_dir_for_server(Path(tempfile.gettempdir()), "pgs-")

    def _world_traversable_tmp(self, uid: int, gids: set[int]) -> Path:
        for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"):
            path = Path(candidate)
            if path.is_dir() and _traversable_by(path, uid, gids):
                holder = Path(tempfile.mkdtemp(prefix="events-app-pg-", dir=path))
                holder.chmod(0o755)
                self._extra_dirs.append(holder)
                return holder
        raise RuntimeError(
            f"no temporary directory reachable by the {SERVER_USER!r} user to hold the test cluster"
        )

    def _run_server_tool(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        assert self._bindir is not None
        command = [str(self._bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.cluster_dir,  # a cwd the server user can enter
            env=_clean_env(),
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def _initdb(self) -> None:
        base = ["initdb", "-D", str(self.data_dir), "-A", "trust", "-U", DB_SUPERUSER, "-E", "UTF8"]
        base.append("--no-sync")  # throwaway cluster: skip the final fsync of the new files
        result = self._run_server_tool([*base, "--locale=C.UTF-8"], timeout=180)
        if result.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            first_error = (result.stderr or result.stdout).strip()
            result = self._run_server_tool([*base, "--no-locale"], timeout=180)
            if result.returncode != 0:
                raise PostgresError(
                    "initdb failed.\n"
                    f"with --locale=C.UTF-8: {first_error}\n"
                    f"with --no-locale: {(result.stderr or result.stdout).strip()}"
                )

    def _start_server(self) -> None:
        last_error = ""
        for _attempt in range(5):
            port = _free_port()
            options = f"-c listen_addresses={HOST} -p {port} -k {self.socket_dir} {_SERVER_SETTINGS}"
            args = ["pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-l", str(self.log_file)]
            result = self._run_server_tool([*args, "-o", options, "start"], timeout=120)
            if result.returncode == 0:
                self._port = port
                self._running = True
                return
            log_tail = _tail(self.log_file)
            last_error = (
                f"pg_ctl start failed (exit {result.returncode}) on port {port}.\n"
                f"pg_ctl output: {(result.stderr or result.stdout).strip()}\n"
                f"--- tail of {self.log_file} ---\n{log_tail}"
            )
            if "could not bind" not in log_tail and "already in use" not in log_tail:
                break
            # Someone grabbed the port between picking and binding: try another one.
            self.log_file.unlink(missing_ok=True)
        raise PostgresError(last_error)
