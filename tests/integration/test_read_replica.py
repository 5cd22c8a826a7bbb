"""A streaming replica (pg_basebackup) of a copy of the test database on ports of its own: heavy
reads (segment previews, ML features) go to it, everything else to the primary, and a browser that
has just written reads its own writes."""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.db import connection

from crm.backups import _libpq_env, pg_bin_dir

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A PostgreSQL server of its own in a temporary directory (run as `postgres` when root)."""

    def __init__(self, bin_dir: Path, root: Path, name: str):
        self.bin = bin_dir
        self.data = root / name
        self.port = _free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True
        )
        assert result.returncode == 0, f"{tool} {args}: {result.stderr}"

    def configure(self) -> None:
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.data}'\nwal_level = replica\n"
                "max_wal_senders = 5\nhot_standby = on\nfsync = off\n"
            )

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.data / "log"), "-w", "start")

    def stop(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
             "-w", "stop"],
            capture_output=True,
        )  # fmt: skip

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def primary_and_replica():
    bin_dir = pg_bin_dir()
    for tool in ("initdb", "pg_ctl", "pg_basebackup", "pg_dump", "pg_restore"):
        if not (bin_dir / tool).exists():
            pytest.skip(f"INTEGRATION TEST SKIPPED: no {tool} in {bin_dir}")
    root = Path(tempfile.mkdtemp(prefix="crm-replica-"))
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(root, postgres.pw_uid, postgres.pw_gid)
    primary = Cluster(bin_dir, root, "primary")
    replica = Cluster(bin_dir, root, "replica")
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "-A", "trust")
        primary.configure()
        primary.start()
        # The primary holds a copy of the test database (schema and reference rows).
        primary.run("createdb", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "crm")
        dump = subprocess.run(
            [str(bin_dir / "pg_dump"), "--format=custom", "--no-owner"],
            env=_libpq_env(connection.get_connection_params()),
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(
            [str(bin_dir / "pg_restore"), "--no-owner", "-h", "127.0.0.1", "-p",
             str(primary.port), "-U", "postgres", "-d", "crm"],
            input=dump,
            capture_output=True,
            check=True,
        )  # fmt: skip
        primary.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(replica.data), "-R", "-X", "stream", "--checkpoint=fast",
        )  # fmt: skip
        replica.configure()
        replica.start()
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_heavy_reads_go_to_the_replica_and_a_writer_reads_its_own_writes(primary_and_replica):
    primary, replica = primary_and_replica
    started = time.monotonic()

    probe = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from tests.integration.replica_probe import main; main()"],
        cwd=REPO,
        env={
            **os.environ,
            "DATABASE_URL": primary.url("crm"),
            "DATABASE_REPLICA_URL": replica.url("crm"),
            "CELERY_TASK_ALWAYS_EAGER": "true",
        },
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip

    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen == {
        "replica_in_recovery": True,
        "ordinary_count": 5,  # the primary
        "preview_count": 2,  # the replica, whose replay is paused
        "feature_rows": 2,
        "features_read_from_replica": True,
        "preview_after_a_write_in_the_request": 6,  # read-your-writes: the primary
        "preview_in_the_next_request_of_that_browser": 6,
        "preview_of_another_browser": 2,
        "preview_after_the_replica_caught_up": 6,
    }, seen
    assert time.monotonic() - started < 120
