"""A PostgreSQL cluster kept in one directory, for `make run` and for the test suite.

The server listens only on a unix socket (no TCP port, so it never collides with another
server). initdb and postgres refuse to run as root; as root they run as the `postgres` OS
user (or `nobody`), which is given the data directory.
"""

import hashlib
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import time
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import errors, sql

SUPERUSER = "chatconnect"
PORT = 5432  # only names the socket file; nothing listens on TCP
# sun_path holds 108 bytes on Linux and 104 on macOS.
MAX_SOCKET_PATH = 100
INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. Install them with "
    "`apt-get install postgresql` (Debian/Ubuntu) or `pip install pgserver`, "
    "or set DATABASE_URL to an existing database."
)


class LocalClusterError(RuntimeError):
    pass


def find_bindir(preferred_version: str | None = None) -> Path:
    """Directory holding initdb, pg_ctl and postgres; `preferred_version` (a data
    directory's PG_VERSION) wins when Debian has that major version installed."""
    candidates = []
    if preferred_version:
        candidates.append(Path(f"/usr/lib/postgresql/{preferred_version}/bin"))
    if shutil.which("pg_config"):
        result = subprocess.run(["pg_config", "--bindir"], check=False, capture_output=True, text=True)
        candidates.append(Path(result.stdout.strip()))
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    candidates += sorted(debian, key=lambda p: int(p.parent.name), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates += [Path(initdb).parent, Path(initdb).resolve().parent]
    spec = find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        candidates.append(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin")
    for bindir in candidates:
        if all((bindir / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise LocalClusterError(INSTALL_HINT)


class LocalCluster:
    """`throwaway=True` trades crash safety for speed (fsync off); only for clusters
    that are destroyed after use."""

    def __init__(self, data_dir: Path, throwaway: bool = False):
        self.data_dir = Path(data_dir).absolute()
        self.throwaway = throwaway
        socket_dir = self.data_dir
        if len(str(socket_dir / f".s.PGSQL.{PORT}")) >= MAX_SOCKET_PATH:
            # Derived from the data directory so another process finds the same socket.
            digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
            socket_dir = Path(f"/tmp/chatconnect-pg-{digest}")
        self.socket_dir = socket_dir
        self.run_as = None
        if os.geteuid() == 0:
            try:
                self.run_as = pwd.getpwnam("postgres")
            except KeyError:
                self.run_as = pwd.getpwnam("nobody")

    def url(self, dbname: str = "postgres") -> str:
        host = quote(str(self.socket_dir), safe="/")
        return f"postgresql://{SUPERUSER}@/{quote(dbname, safe='')}?host={host}&port={PORT}"

    def is_running(self) -> bool:
        return self._postmaster_pid() is not None

    def start(self) -> bool:
        """Initialise the cluster if needed and start it. Returns False when a server
        was already running on this data directory (it is reused as it is)."""
        if self.is_running():
            return False
        self._prepare_dirs()
        bindir = self._bindir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run([bindir / "initdb", "-D", self.data_dir, "--auth=trust", f"--username={SUPERUSER}",
                       "--encoding=UTF8", "--locale=C", *(["--no-sync"] if self.throwaway else [])])
        self._remove_stale_lock_files()
        options = ["-k", str(self.socket_dir), "-p", str(PORT), "-c", "listen_addresses="]
        if self.throwaway:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = self.data_dir / "server.log"
        try:
            # pg_ctl hands -o to /bin/sh, hence the quoting.
            self._run([bindir / "pg_ctl", "start", "-w", "-t", "60", "-D", self.data_dir, "-l", log,
                       "-o", shlex.join(options)])
        except LocalClusterError as error:
            if self.is_running():  # another process started it at the same moment
                return False
            tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
            if not tail:
                raise LocalClusterError(f"PostgreSQL did not start: {error}") from None
            raise LocalClusterError(f"PostgreSQL did not start; {log}:\n" + "\n".join(tail)) from None
        return True

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._run([self._bindir() / "pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", self.data_dir])

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self, name: str) -> str:
        """Create database `name` unless it exists; returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except errors.DuplicateDatabase:
                    pass
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server and delete the cluster's files."""
        self.stop(mode="immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.socket_dir != self.data_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    def _bindir(self) -> Path:
        version_file = self.data_dir / "PG_VERSION"
        return find_bindir(version_file.read_text().strip() if version_file.exists() else None)

    def _postmaster_pid(self) -> int | None:
        """PID of the postmaster serving this data directory, or None. A postmaster.pid
        left by a crash may name a PID that now belongs to another process (containers
        reuse PIDs after a restart), so on Linux the process's working directory, which
        the postmaster sets to its data directory, must match too."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        except PermissionError:
            pass  # alive, owned by another user: decided below where /proc allows
        if Path("/proc/self/cwd").exists():
            try:
                if Path(f"/proc/{pid}/cwd").resolve(strict=True) != self.data_dir.resolve():
                    return None
            except (PermissionError, FileNotFoundError):
                return None
        return pid

    def _remove_stale_lock_files(self) -> None:
        """postgres ignores a lock file whose PID is dead but refuses one whose PID was
        reused by an unrelated process. Every server process works in the data directory,
        so when none does, the lock files are stale whatever PID they name."""
        proc = Path("/proc")
        if not (proc / "self/cwd").exists():
            return  # no way to tell here: leave it to postgres
        data_dir = self.data_dir.resolve()
        for cwd in proc.glob("[0-9]*/cwd"):
            try:
                if cwd.resolve(strict=True) == data_dir:
                    return  # old server processes remain: postgres will refuse to start, rightly
            except OSError:
                continue
        for lock in (self.data_dir / "postmaster.pid", self.socket_dir / f".s.PGSQL.{PORT}.lock"):
            lock.unlink(missing_ok=True)

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        dirs = [self.data_dir]
        if self.socket_dir != self.data_dir:
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
            owner = self.run_as.pw_uid if self.run_as else os.geteuid()
            st = os.lstat(self.socket_dir)
            # /tmp is shared: refuse a directory (or link) that another user planted there.
            if st.st_uid not in (owner, os.geteuid()) or not stat.S_ISDIR(st.st_mode):
                raise LocalClusterError(f"{self.socket_dir} belongs to someone else; remove it")
            dirs.append(self.socket_dir)
        for d in dirs:
            os.chmod(d, 0o700)
        if self.run_as is None:
            return
        uid, gid = self.run_as.pw_uid, self.run_as.pw_gid
        for d in dirs:
            if d.stat().st_uid != uid:
                os.chown(d, uid, gid)
                for root, subdirs, files in os.walk(d):
                    for name in subdirs + files:
                        os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
        # The server user must be able to reach its directory: add the search bit (not
        # read) to parents that deny it, e.g. 0700 temporary directories owned by root.
        for parent in self.data_dir.parents:
            mode, owner = parent.stat().st_mode, parent.stat().st_uid
            if not mode & stat.S_IXOTH and not (owner == uid and mode & stat.S_IXUSR):
                os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)

    def _run(self, command: list) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        user = {}
        if self.run_as is not None:
            user = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        result = subprocess.run([str(c) for c in command], check=False, cwd=self.data_dir, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, **user)
        if result.returncode != 0:
            raise LocalClusterError(f"{Path(command[0]).name} failed ({result.returncode}): "
                                    f"{result.stderr.strip() or result.stdout.strip()}")



# The cluster of `make run` and of the command line when DATABASE_URL is not set.
DEVELOPMENT_DATA_DIR = Path("instance/postgres")
DEVELOPMENT_DATABASE = "chatconnect"
COUNT_OTHER_CLIENTS = """
SELECT count(*) FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"""


@contextmanager
def development_database(say):
    """Yields the URL of the `make run` database, its cluster started if it was not running.
    A cluster started here (even if interrupted while starting) is stopped on leaving, unless
    another process uses it by then (a `make run` or a command started meanwhile)."""
    local = LocalCluster(DEVELOPMENT_DATA_DIR)
    ours = False
    try:
        if local.is_running():
            say(f"Using the PostgreSQL server already running in {DEVELOPMENT_DATA_DIR}")
        else:
            say(f"Starting PostgreSQL in {DEVELOPMENT_DATA_DIR} (unix socket only)")
            ours = True
            ours = local.start()  # False: another process started it at the same moment
        yield local.create_database(DEVELOPMENT_DATABASE)
    finally:
        if ours and local.is_running():
            if _in_use_by_others(local):
                say(f"Leaving PostgreSQL in {DEVELOPMENT_DATA_DIR} running: another process uses it")
            else:
                say(f"Stopping PostgreSQL in {DEVELOPMENT_DATA_DIR}")
                local.stop()


def _in_use_by_others(cluster: LocalCluster, grace_seconds: float = 3) -> bool:
    """Whether other clients stay connected; those of a server that just stopped take a moment
    to be gone from pg_stat_activity."""
    deadline = time.monotonic() + grace_seconds
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        while conn.execute(COUNT_OTHER_CLIENTS).fetchone()[0] > 0:
            if time.monotonic() > deadline:
                return True
            time.sleep(0.1)
    return False
