"""manage.py restore <backup>: load a backup into the configured database and MEDIA_ROOT, apply
this code's migrations, and re-apply every logged erasure (so nobody erased since comes back)."""

from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from crm.backups import BackupError, backup_restore


class Command(BaseCommand):
    help = (
        "Restore a backup directory into the configured database (DATABASE_URL) and MEDIA_ROOT, "
        "then migrate and re-apply erasures."
    )

    def add_arguments(self, parser):
        parser.add_argument("backup", type=Path, help="A crm-<time> directory made by backup.")
        parser.add_argument(
            "--yes",
            action="store_true",
            help="Confirm: the database's tables are replaced by the backup's.",
        )

    def handle(self, *args, backup: Path, yes: bool = False, **options):
        if not yes:
            raise CommandError(
                "restore replaces the tables of the configured database: run it again with --yes."
            )
        try:
            result = backup_restore(path=backup)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Restored the backup of {result['backup_of']} into {result['database']} "
            f"({result['media_files']} media files)."
        )
        call_command("migrate", "--noinput", verbosity=0)
        self.stdout.write("Migrations applied.")
        # Without this step a person erased after the backup was taken would be back.
        call_command("reapply_erasures", stdout=self.stdout)
