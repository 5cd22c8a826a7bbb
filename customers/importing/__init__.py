"""CSV import of customers and purchases: streaming, bulk writes, every bad row reported.

The command line (import_customers, import_purchases), the upload page and its Celery task all
go through the functions exported here.
"""

from customers.importing.customers import CUSTOMER_FIELDS, customers_import
from customers.importing.jobs import import_job_create, import_job_run, import_run
from customers.importing.purchases import PURCHASE_FIELDS, purchase_dedup_key, purchases_import
from customers.importing.reading import (
    REPORT_HEADER,
    ImportFileError,
    ImportProgress,
    ImportResult,
    RowError,
    column_map_parse,
)

__all__ = [
    "CUSTOMER_FIELDS",
    "PURCHASE_FIELDS",
    "REPORT_HEADER",
    "ImportFileError",
    "ImportProgress",
    "ImportResult",
    "RowError",
    "column_map_parse",
    "customers_import",
    "import_job_create",
    "import_job_run",
    "import_run",
    "purchase_dedup_key",
    "purchases_import",
]
