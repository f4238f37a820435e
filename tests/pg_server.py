"""A throwaway PostgreSQL cluster for tests and benchmarks: found, made, started and deleted by this process.

    server = PgServer.start()          # initdb into a temp dir, pg_ctl start on a free port
    url = server.create_database()     # postgresql://postgres@127.0.0.1:PORT/<fresh unique name>
    server.stop()                      # pg_ctl stop -m immediate, then the temp dir is deleted (also at exit)

- Binaries: ``initdb``, ``pg_ctl`` and ``psql`` from ``$EMBODIED_AI_PG_BIN`` (when set, only there), else beside ``initdb`` on PATH, else
  the newest ``/usr/lib/postgresql/<ver>/bin`` (where Debian puts them), else ``/usr/local/bin``,
  ``/usr/local/pgsql/bin``. None found: ``find_bin_dir`` returns None and the caller says what to install.
- PostgreSQL refuses to run as root. When this process is root, initdb and pg_ctl run as the unprivileged user
  ``embodiedai-pg`` (made with ``useradd`` when missing), which owns the temp dir.
- The cluster listens on 127.0.0.1 only, on a port the kernel just handed out (retried on a clash), with its socket in
  the temp dir and ``trust`` authentication: it is for this machine's tests, nothing else. Durability is switched off
  (``fsync``, ``synchronous_commit``, ``full_page_writes``): a test killing a *client* mid-transaction still sees
  PostgreSQL's transactional behaviour; only a crash of the whole machine could lose data, and the data is thrown away.
- Under pytest-xdist each worker starts its own cluster (its own temp dir and port); nothing is shared, so no lock.
- Cleanup: ``stop`` at the session's end, and at interpreter exit (atexit) if the session did not get there. A process
  killed outright (SIGKILL) cannot clean up: the next ``start`` on the machine stops and deletes any cluster whose
  owner process (``owner.pid`` in its folder) is gone.
- Databases are made and dropped with ``psql`` (no Python driver needed), from the server's ``postgres`` database.
"""
from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "embodiedai-pg"
PREFIX = "embodied-ai-pg-"
OWNER = "owner.pid"  # the pid of the process that started the cluster
TOOLS = ("initdb", "pg_ctl", "psql")
_names = itertools.count()


class PgUnavailable(RuntimeError):
    """The cluster could not be made or started; the message says why (with the server log's last lines)."""


class PgMissing(PgUnavailable):
    """No PostgreSQL server binaries on this machine; the message says what to install."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", Path(path).parent.name) or [0])


def find_bin_dir() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``psql``, or None (see the module docstring for the order)."""
    if os.environ.get("EMBODIED_AI_PG_BIN"):  # given: that folder only
        folder = Path(os.environ["EMBODIED_AI_PG_BIN"])
        return folder if all(os.access(folder / tool, os.X_OK) for tool in TOOLS) else None
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates += [Path(on_path).parent, Path(os.path.realpath(on_path)).parent]
    candidates += [Path(p).parent for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key,
                                                  reverse=True)]
    candidates += [Path("/usr/local/bin"), Path("/usr/local/pgsql/bin")]
    for folder in candidates:
        if all(os.access(folder / tool, os.X_OK) for tool in TOOLS):
            return folder
    return None


def missing_message() -> str:
    return ("no PostgreSQL server binaries (initdb, pg_ctl, psql) found on PATH, in /usr/lib/postgresql/*/bin or "
            "/usr/local/bin; install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install "
            "postgresql) or set EMBODIED_AI_PG_BIN to their folder" + (
        f" (EMBODIED_AI_PG_BIN={os.environ['EMBODIED_AI_PG_BIN']} lacks them)" if os.environ.get("EMBODIED_AI_PG_BIN")
        else ""))


def required() -> bool:
    """Whether a missing server is a failure (CI, or EMBODIED_AI_REQUIRE_PG) rather than a skip."""
    def on(var: str) -> bool:
        return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")
    return on("CI") or on("EMBODIED_AI_REQUIRE_PG")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unprivileged_user() -> pwd.struct_passwd:
    """The user PostgreSQL runs as when we are root: ``embodiedai-pg``, created (no home, no login) when missing.
    xdist workers (and other processes) create it under a file lock, one at a time."""
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        pass
    from filelock import FileLock

    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    # concurrent useradd calls can each write /etc/passwd and leave a uid that no longer exists: one at a time
    with FileLock(os.path.join(tempfile.gettempdir(), f"{PG_USER}-useradd.lock")):
        try:
            return pwd.getpwnam(PG_USER)
        except KeyError:
            pass
        done = subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                              capture_output=True, text=True)
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        raise PgUnavailable(f"running as root, and cannot create the unprivileged user {PG_USER} PostgreSQL needs "
                            f"({useradd}: {done.stderr.strip() or done.returncode}); create it with "
                            f"`useradd --system {PG_USER}` or run the tests as another user") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(bin_dir: Path) -> None:
    """Stop and delete the clusters of earlier runs whose process died without cleaning up (a worker killed with
    SIGKILL skips atexit). A cluster whose owner still runs (another session's) is left alone."""
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            owner = int((folder / OWNER).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # not ours, or still being made
        if _alive(owner):
            continue
        with contextlib.suppress(Exception):
            st = folder.stat()
            if (folder / "data" / "postmaster.pid").exists():
                kwargs = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []} if os.geteuid() == 0 else {}
                subprocess.run([str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "-w", "-t",
                                "30", "stop"], capture_output=True, timeout=60, cwd=folder, **kwargs)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class PgServer:
    bin_dir: Path
    root: Path  # the temp dir: data/, the socket, server.log
    port: int = 0
    user: pwd.struct_passwd | None = None  # who runs the server (None: this process's user)
    running: bool = False
    databases: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------------------------------------- life
    @classmethod
    def start(cls, bin_dir: Path | None = None, attempts: int = 3) -> PgServer:
        """initdb + pg_ctl start; stopped and deleted at interpreter exit if ``stop`` is not called first.
        ``PgUnavailable`` when no binaries are found or the server does not come up (with its log's last lines)."""
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise PgMissing(missing_message())
        user = _unprivileged_user() if os.geteuid() == 0 else None
        reap_orphans(bin_dir)
        root = Path(tempfile.mkdtemp(prefix=PREFIX))
        server = cls(bin_dir=bin_dir, root=root, user=user)
        atexit.register(server.stop)
        try:
            (root / OWNER).write_text(f"{os.getpid()}\n")
            if user is not None:
                os.chown(root, user.pw_uid, user.pw_gid)
            server._initdb()
            for attempt in range(attempts):
                server.port = _free_port()
                if server._pg_ctl_start():
                    server.running = True
                    return server
            raise PgUnavailable(f"PostgreSQL did not start in {root} after {attempts} tries: {server.log_tail()}")
        except BaseException:
            server.stop()
            raise

    def _run(self, tool: str, *args: str, as_server: bool = True, check: bool = True, timeout: float = 120
             ) -> subprocess.CompletedProcess:
        """Run a PostgreSQL binary (as the server's user when ``as_server``), output captured."""
        user = self.user if as_server else None
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PGTZ": "UTC"}
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user is not None else {}
        done = subprocess.run([str(self.bin_dir / tool), *args], capture_output=True, text=True, env=env,
                              cwd=self.root, timeout=timeout, **kwargs)
        if check and done.returncode != 0:
            raise PgUnavailable(f"{tool} {' '.join(args[:3])} ... failed ({done.returncode}): "
                                f"{(done.stderr or done.stdout).strip()[-800:]}")
        return done

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def _initdb(self) -> None:
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-locale", "--no-sync")

    def _pg_ctl_start(self) -> bool:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        done = self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.root / "server.log"), "-w", "-t", "60",
                         "-o", options, "start", check=False)
        return done.returncode == 0

    def log_tail(self, lines: int = 8) -> str:
        try:
            return " | ".join((self.root / "server.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Stop the server (immediate: nothing to keep) and delete its folder. Safe to call twice."""
        if self.running:
            self.running = False
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30", "stop",
                          check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    # ---------------------------------------------------------------------------------------------- databases
    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run one SQL command on ``dbname`` as the superuser; its output (tuples only, unaligned)."""
        done = self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
                         str(self.port), "-U", "postgres", "-d", dbname, "-c", sql, as_server=False)
        return done.stdout

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database with a unique name (``<prefix>_<worker>_<n>_<random>``); its URL."""
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = re.sub(r"[^a-z0-9_]", "_", f"{prefix}_{worker}_{next(_names)}_{uuid.uuid4().hex[:8]}".lower())
        self.psql(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.url(name)

    def drop_database(self, url_or_name: str) -> None:
        """Drop a database made by ``create_database``, closing whatever connections a test left open."""
        name = url_or_name.rsplit("/", 1)[-1]
        if self.running and name in self.databases:
            self.databases.remove(name)
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
