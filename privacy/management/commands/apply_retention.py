from django.core.management.base import BaseCommand

from privacy.retention import retention_run


class Command(BaseCommand):
    help = (
        "Anonymise customers inactive for PRIVACY_RETENTION_YEARS years (--dry-run only reports)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Report without changing anything"
        )
        parser.add_argument(
            "--years", type=int, default=None, help="Override PRIVACY_RETENTION_YEARS"
        )

    def handle(self, *args, dry_run=False, years=None, **options):
        report = retention_run(dry_run=dry_run, years=years)
        if not report.years:
            self.stdout.write("The retention policy is off (PRIVACY_RETENTION_YEARS=0).")
            return
        verb = "would be anonymised" if dry_run else "anonymised"
        count = report.candidates if dry_run else report.anonymised
        self.stdout.write(
            f"Policy: no activity for {report.years} years (since {report.cutoff:%Y-%m-%d}). "
            f"{count} customers {verb}."
        )
        if dry_run and report.sample_ids:
            self.stdout.write("First ids: " + ", ".join(str(i) for i in report.sample_ids))
