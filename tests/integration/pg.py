"""
A real PostgreSQL for the tests that need one (the PostgreSQL store, the cluster):
Debian's server binaries, data in a folder of the test's, listening only on a Unix
socket in that folder (listen_addresses=''), fsync off, stopped by its PID.

    pg = PostgreSQL().start()          # in a new folder under /tmp
    pg = PostgreSQL(folder).start()    # or in folder (the server's user must reach it)
    dsn = pg.create_database("node")   # a libpq conninfo for a fresh database
    pg.sql("node", "SELECT count(*) FROM accounts")   # -> "3"
    pg.stop()

PostgreSQL refuses to run as root: as root, the server runs as the "postgres" user (the
package's) or else "nobody", and the folder is made theirs: it must be somewhere that
user can reach (pytest's tmp_path, under a root-only folder, is not; the default, a
new folder in /tmp, is). remove() stops the server and deletes the folder. Authentication is trust for
the user "starling": only this folder's socket reaches the server, and the folder is
private to that user and root.
"""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT = 30.0
USER = "starling"


def _bindir():
    try:
        d = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if d and Path(d, "initdb").exists():
            return Path(d)
    except FileNotFoundError:
        pass
    return Path("/usr/lib/postgresql/15/bin")


class PostgreSQL:
    def __init__(self, folder=None):
        self.dir = Path(folder or tempfile.mkdtemp(prefix="starling-pg-")).resolve()
        self.data = self.dir / "data"
        self.bindir = _bindir()
        self.proc = None
        self.log_path = self.dir / "server.log"
        self._log = None
        self.runas = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.runas = pwd.getpwnam(name)
                    break
                except KeyError:
                    pass

    def _demote(self):
        os.setgid(self.runas.pw_gid)
        os.initgroups(self.runas.pw_name, self.runas.pw_gid)
        os.setuid(self.runas.pw_uid)

    def _run_as(self, args, **kw):
        return subprocess.run(args, preexec_fn=self._demote if self.runas else None, **kw)

    def start(self):
        if not (self.bindir / "initdb").exists():
            raise RuntimeError("no PostgreSQL server binaries: apt-get install postgresql")
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.runas:
            os.chown(self.dir, self.runas.pw_uid, self.runas.pw_gid)
        if not self.data.exists():
            r = self._run_as([str(self.bindir / "initdb"), "-D", str(self.data), "-U", USER,
                              "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                             capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"initdb: {r.stdout}{r.stderr}")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.dir),
             "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=100"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=self._demote if self.runas else None)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log()}")
            r = subprocess.run([str(self.bindir / "pg_isready"), "-q", "-h", str(self.dir),
                                "-U", USER, "-d", "postgres"])
            if r.returncode == 0:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"postgres did not start in {START_TIMEOUT}s:\n{self.log()}")

    def stop(self, timeout=10.0):
        """Fast shutdown (SIGINT: clients are disconnected), SIGKILL after timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        rc, self.proc = self.proc.returncode, None
        return rc

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def dsn(self, db):
        return f"host={self.dir} dbname={db} user={USER}"

    def create_database(self, db):
        """A fresh, empty database (dropped first if there was one); its conninfo."""
        self.sql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        self.sql("postgres", f'CREATE DATABASE "{db}"')
        return self.dsn(db)

    def sql(self, db, query):
        """Runs query with psql; returns its output, unaligned, without headers."""
        r = subprocess.run([str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-h", str(self.dir), "-U", USER, "-d", db, "-c", query],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {query}: {r.stderr}")
        return r.stdout.strip()
