from django.core.management.base import BaseCommand

from privacy.erasure import erasures_reapply


class Command(BaseCommand):
    help = "Re-apply every logged erasure, for example after restoring a database backup."

    def handle(self, *args, **options):
        result = erasures_reapply()
        self.stdout.write(
            f"Restored {result['restored_log_entries']} erasure log entries, "
            f"{result['suppressions_restored']} suppression entries; "
            f"erased {result['customers_erased']} customers again."
        )
