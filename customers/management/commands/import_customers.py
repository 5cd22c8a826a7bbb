"""python manage.py import_customers FILE [--map FIELD=COLUMN ...] [--date-format F] [--report R]"""

from customers.importing import CUSTOMER_FIELDS
from customers.management.commands.import_purchases import ImportCommand


class Command(ImportCommand):
    help = (
        "Import customers from a CSV file with a header row. Upserts by external_id, else by "
        "email. Fields: " + ", ".join(CUSTOMER_FIELDS) + ", attr.<key>."
    )
    kind = "customers"
