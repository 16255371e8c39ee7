"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl as an unprivileged user in a temp dir."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "playground_test"
# A database with every migration applied, copied by CREATE DATABASE … TEMPLATE for each test's data dir: a copy is
# cheaper than applying the migrations again (and a test of the migrations themselves creates a blank database).
TEMPLATE = "playground_template"


def find_bin_dir() -> Path | None:
    """Debian's newest PostgreSQL binaries (initdb and pg_ctl are not on PATH there), or None."""
    env = os.environ.get("PLAYGROUND_PG_BIN")
    candidates = [env] if env else sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    for where in candidates:
        if where and (Path(where) / "initdb").exists() and (Path(where) / "pg_ctl").exists():
            return Path(where)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> tuple[int, int] | None:
    """(uid, gid) to run the server as: PostgreSQL refuses to run as root, so root hands it to `nobody`."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam("nobody")
    return user.pw_uid, user.pw_gid


class Cluster:
    """initdb into a temp dir, start on a free loopback port (socket in the temp dir), stop and delete at the end."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.dir = Path(tempfile.mkdtemp(prefix="pg-test-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.password = secrets.token_hex(12)  # password auth over TCP, so a wrong password is a real error
        self.owner = _run_as()

    @property
    def url(self) -> str:
        """The superuser's URL (a database name is appended by callers)."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}"

    def _pg(self, *args: str) -> None:
        kwargs = {}
        if self.owner is not None:
            kwargs.update(user=self.owner[0], group=self.owner[1], extra_groups=[])
        out = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True, timeout=120,
                             cwd=self.dir, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}, **kwargs)
        if out.returncode:
            raise RuntimeError(f"{args[0]} failed: {out.stderr.strip() or out.stdout.strip()}")

    def start(self) -> Cluster:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self.owner is not None:
            for path in (self.dir, pwfile):
                os.chown(path, *self.owner)
        os.chmod(self.dir, 0o700)
        self._pg("initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile), "-E", "UTF8",
                 "--locale=C.UTF-8", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "--no-sync")
        pwfile.unlink()
        # Throwaway data: durability settings off, which makes commits cheap on a shared CI machine.
        options = (f"-c port={self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options, "-w", "-t", "60", "start")
        self._make_template()
        return self

    def _make_template(self) -> None:
        import psycopg

        from assistants.store.pg_schema import migrate

        create_database(self.url, TEMPLATE)
        with psycopg.connect(f"{self.url}/{TEMPLATE}", autocommit=True) as conn:
            migrate(conn)

    def drop_databases(self) -> None:
        """Drop every database the tests created (not the template), closing whatever is still connected."""
        import psycopg

        with psycopg.connect(f"{self.url}/postgres", autocommit=True) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname NOT IN ('postgres', %s)",
                (TEMPLATE,))]
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        try:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def create_database(server_url: str, name: str, template: str = "") -> None:
    """CREATE DATABASE (a copy of `template` if given) unless it exists (two processes may ask for the same one)."""
    import psycopg
    from psycopg import errors

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        try:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        except (errors.DuplicateDatabase, errors.UniqueViolation):
            pass
