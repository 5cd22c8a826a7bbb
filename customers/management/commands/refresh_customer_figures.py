"""python manage.py refresh_customer_figures [--check]"""

from django.core.management.base import BaseCommand, CommandError

from customers.services import customer_figures_check, customer_stats_refresh


class Command(BaseCommand):
    help = (
        "Recompute every customer's figures (lifetime value, purchase count, first and last "
        "purchase, average order value) from their purchases, set-based. With --check, only "
        "report (and record) how many disagree, and exit 1 when any do."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Report drift without recomputing anything"
        )

    def handle(self, *args, **options) -> None:
        if options["check"]:
            check = customer_figures_check(repair=False)
            self.stdout.write(
                f"{check.customers_checked} customers checked, "
                f"{check.customers_drifted} disagree with their purchases"
            )
            if check.customers_drifted:
                raise CommandError(
                    f"first drifted customer ids: {check.drifted_ids[:20]}", returncode=1
                )
            return
        updated = customer_stats_refresh()
        self.stdout.write(f"{updated} customers' figures recomputed")
