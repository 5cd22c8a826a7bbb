"""manage.py backup: the database (pg_dump custom format) and media files, with a manifest."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crm.backups import BackupError, backup_create, backups_prune


class Command(BaseCommand):
    help = "Back up the database and the media files into BACKUP_DIR (or --directory)."

    def add_arguments(self, parser):
        parser.add_argument("--directory", type=Path, help="Where to write (default BACKUP_DIR).")
        parser.add_argument(
            "--keep", type=int, default=0, help="Then delete all but the newest N backups."
        )

    def handle(self, *args, directory=None, keep=0, **options):
        try:
            path = backup_create(directory=directory)
            pruned = backups_prune(keep=keep, directory=directory) if keep else []
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Backup written: {path}")
        for old in pruned:
            self.stdout.write(f"Deleted old backup: {old}")
