"""A real PostgreSQL server for the tests, started from the machine's binaries as an
unprivileged system user (PostgreSQL refuses to run as root) and always stopped.

- Binaries: ``$PATCHLEDGER_TEST_PG_BIN``, else the newest ``/usr/lib/postgresql/<v>/bin``;
  tests are skipped with a message when none is installed.
- User: ``postgres`` (created with ``useradd --system`` when missing and the tests run as root);
  when the tests already run unprivileged, the server runs as that user.
- Port: ``$PATCHLEDGER_TEST_PG_PORT``, else ``PATCHLEDGER_TEST_PORT_BASE + 800`` (the test port
  base defaults to 27000), the first free one of the hundred from there.
- Data directory: a fresh temporary directory owned by that user, removed at the end; the
  server listens on 127.0.0.1 only, with ``trust`` authentication (a throw-away test server).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.network import TEST_PORT_BASE

SYSTEM_USER = "postgres"


def find_binaries() -> Path | None:
    """The directory of ``initdb``/``pg_ctl``, or ``None``."""
    configured = os.environ.get("PATCHLEDGER_TEST_PG_BIN")
    if configured:
        return Path(configured) if (Path(configured) / "initdb").is_file() else None
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    return versions[-1].parent if versions else None


def _port() -> int:
    configured = os.environ.get("PATCHLEDGER_TEST_PG_PORT")
    first = int(configured) if configured else int(
        os.environ.get("PATCHLEDGER_TEST_PORT_BASE", TEST_PORT_BASE)) + 800
    for port in range(first, first + 100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port for PostgreSQL in {first}-{first + 99}")


def _server_user() -> str:
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", SYSTEM_USER], check=True, capture_output=True)
    return SYSTEM_USER


@dataclass
class PostgresServer:
    """A running server: ``url(db)`` is the SQLAlchemy URL of database ``db``."""

    bin_dir: Path
    data_dir: Path
    port: int
    user: str

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (owned by the server user); return its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres").replace("postgresql://", "postgresql://", 1),
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server (see the module docstring); skip the test when PostgreSQL is not
    installed; stop it and remove its data at the end."""
    bin_dir = find_binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb; set "
                    "PATCHLEDGER_TEST_PG_BIN)")
    user = _server_user()
    data_dir = Path(tempfile.mkdtemp(prefix="patchledger-pg-"))
    shutil.chown(data_dir, user)
    data_dir.chmod(0o700)
    server = PostgresServer(bin_dir, data_dir / "data", _port(), user)
    started = False
    try:
        server._run("initdb", "-D", str(server.data_dir), "-U", user, "--auth=trust",
                    "--encoding=UTF8", "--no-instructions")
        server._run("pg_ctl", "-D", str(server.data_dir), "-l", str(data_dir / "server.log"),
                    "-w", "-t", "60", "-o",
                    f"-p {server.port} -k {data_dir} -c listen_addresses=127.0.0.1 "
                    "-c shared_buffers=32MB -c max_connections=40", "start")
        started = True
        yield server
    except subprocess.CalledProcessError as exc:
        log = data_dir / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"PostgreSQL failed: {' '.join(exc.cmd)}: {exc.stderr}\n{tail}"
                           ) from exc
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError):
                server._run("pg_ctl", "-D", str(server.data_dir), "-m", "fast", "-w", "stop")
        shutil.rmtree(data_dir, ignore_errors=True)
