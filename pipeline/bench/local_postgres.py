"""A throwaway PostgreSQL server for the bench's Airflow section and the tests: Debian's server
binaries (`make test` installs the postgresql package when they are missing), a cluster made by
initdb in a fresh folder, listening on a free port of 127.0.0.1 only, password authentication
over TCP (the superuser only over the Unix socket in that folder).

PostgreSQL refuses to run as root: as root, the server runs as the `postgres` account Debian's
package creates (else `nobody`). Its folder is then outside the tests' TMPDIR, whose mode 700
that account cannot traverse, and is removed by stop(). Nothing happens at import.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator


def server_bin() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Postgres:
    """start() a cluster; database() makes a database owned by a role with a real password."""

    SUPERUSER = "postgres"

    def __init__(self) -> None:
        self.bin = server_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL's server is not installed (Debian: apt-get install "
                               "postgresql; `make test` does it when run as root)")
        # As root, the cluster's files belong to the account the server runs as.
        self.account = None
        if os.geteuid() == 0:
            self.account = next((a for a in ("postgres", "nobody") if _exists(a)), None)
        self.folder = Path(tempfile.mkdtemp(prefix="csv2model-pg-", dir="/tmp"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.roles: dict[str, str] = {}

    def _run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.account, "--"] if self.account else []
        return subprocess.run(prefix + list(command), check=True, capture_output=True,
                              text=True, timeout=120, **kwargs)

    def start(self) -> "Postgres":
        if self.account:
            user = pwd.getpwnam(self.account)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.SUPERUSER,
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                  "--no-sync")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.folder / "server.log"), "-w", "-o",
                  f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start")
        return self

    def sql(self, statement: str, database: str = "postgres") -> str:
        """As the superuser, over the Unix socket in the server's folder."""
        return self._run("psql", "-h", str(self.folder), "-p", str(self.port), "-U",
                         self.SUPERUSER, "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc",
                         statement).stdout

    def dump(self, database: str) -> str:
        """pg_dump of one database as SQL text (what a search for a secret must cover)."""
        return self._run(str(self.bin / "pg_dump"), "-h", str(self.folder), "-p", str(self.port),
                         "-U", self.SUPERUSER, database).stdout

    def database(self, name: str, role: str = "csv2model") -> str:
        """Create database `name` owned by `role` (made once, with a random password); returns
        its SQLAlchemy URL on 127.0.0.1 with the password in it."""
        if role not in self.roles:
            self.roles[role] = "pw" + secrets.token_hex(12)
            self.sql(f"CREATE ROLE {role} LOGIN PASSWORD '{self.roles[role]}'")
        self.sql(f"CREATE DATABASE {name} OWNER {role}")
        return f"postgresql+psycopg2://{role}:{self.roles[role]}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                          "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _exists(account: str) -> bool:
    try:
        pwd.getpwnam(account)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def running() -> Iterator[Postgres]:
    """A started server, stopped and removed when the block ends."""
    server = Postgres().start()
    try:
        yield server
    finally:
        server.stop()
