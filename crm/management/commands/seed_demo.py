"""python manage.py seed_demo --customers N --seed S [--if-empty] [--replace]

Lives in crm, the project, because demo data spans every app (customers, and consent through
privacy's ledger); customers itself must never import privacy.
"""

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from crm.demo.seeding import DEMO_PASSWORD, DEMO_USERS, demo_data_clear, demo_data_seed
from customers.models import Customer


class Command(BaseCommand):
    help = (
        "Fill the database with deterministic demo data: staff in every role, customers, accounts, "
        "products, purchases, events, notes and consent. The same seed gives the same data."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=int, default=3000, help="how many customers (default 3000)"
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when customers already exist"
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="delete the existing customers, accounts, products and tags first (staff are kept)",
        )
        parser.add_argument(
            "--today",
            type=dt.date.fromisoformat,
            default=None,
            help="the day the data ends on, YYYY-MM-DD (default: today)",
        )

    def handle(self, *args, **options):
        if options["customers"] < 0:
            raise CommandError(f"--customers: expected zero or more, got {options['customers']}")
        existing = Customer.objects.count()
        if existing and options["if_empty"]:
            self.stdout.write(
                f"Demo data not added: the database already holds {existing} customers."
            )
            return
        if existing and not options["replace"]:
            raise CommandError(
                f"customers: the database already holds {existing} customers; pass --if-empty to "
                "leave them alone or --replace to delete them and seed afresh."
            )
        if existing:
            demo_data_clear()
        started = time.monotonic()
        summary = demo_data_seed(
            customers=options["customers"],
            seed=options["seed"],
            today=options["today"],
            progress=options["verbosity"] > 0,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data written in {time.monotonic() - started:.1f} s: {summary}."
            )
        )
        users = ", ".join(DEMO_USERS)
        self.stdout.write(f"Sign in as {users} with the password {DEMO_PASSWORD!r}.")
