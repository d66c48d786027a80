"""A throwaway PostgreSQL server for the store tests (when PostgreSQL's programs are installed).

``MATBRAIN_TEST_POSTGRES=postgresql://user@host:port/db`` points the tests at a server of your
own instead. Every test gets a fresh database on the server, dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres_user(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root
    if os.geteuid() == 0 and shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *args]
    return args


def _postgres_program(name: str) -> str | None:
    """On PATH, or where Debian's postgresql package puts it (/usr/lib/postgresql/N/bin)."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                      key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)  # fmt: skip
    return str(versions[-1]) if versions else None


@contextmanager
def throwaway_server() -> Iterator[str | None]:
    """Yields the server URL, or ``None`` when PostgreSQL or psycopg2 is not available."""
    url = os.environ.get("MATBRAIN_TEST_POSTGRES")
    if url:
        yield url
        return
    try:
        import psycopg2  # noqa: F401  (ASE's PostgreSQL backend needs it)
    except ImportError:
        yield None
        return
    initdb, pg_ctl = _postgres_program("initdb"), _postgres_program("pg_ctl")
    if not initdb or not pg_ctl:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="matbrain-pg-"))
    data, port = folder / "data", _free_port()
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        subprocess.run(_as_postgres_user([initdb, "-D", str(data), "-U", "postgres",
                                          "--auth=trust"]), check=True, capture_output=True)  # fmt: skip
        subprocess.run(_as_postgres_user([pg_ctl, "-D", str(data), "-w", "-l", str(folder / "log"),
                                          "-o", f"-p {port} -k {folder} -h 127.0.0.1", "start"]),
                       check=True, capture_output=True)  # fmt: skip
    except (subprocess.CalledProcessError, OSError, LookupError):
        shutil.rmtree(folder, ignore_errors=True)
        yield None
        return
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres_user([pg_ctl, "-D", str(data), "-m", "fast", "stop"]),
                       capture_output=True)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server (its URL), dropped afterwards."""
    import psycopg2

    base, _, _ = server_url.rpartition("/")
    name = f"matbrain_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(server_url)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"{base}/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
