"""Recompute the stored email and phone hashes of every customer (after PRIVACY_HASH_SALT changed,
or after customers were loaded without them, e.g. by COPY)."""

from django.core.management.base import BaseCommand

from customers.contact_hashes import contact_hashes_refresh
from customers.models import Customer


class Command(BaseCommand):
    help = "Recompute every customer's stored email and phone hashes, set-based in the database."

    def handle(self, *args, **options) -> None:
        changed = contact_hashes_refresh(Customer.objects.all())
        self.stdout.write(f"Recomputed the hashes of {changed} email and phone addresses.")
