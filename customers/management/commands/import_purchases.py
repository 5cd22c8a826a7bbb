"""python manage.py import_purchases FILE [--map FIELD=COLUMN ...] [--create-customers] ..."""

import os
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from customers.importing import (
    PURCHASE_FIELDS,
    ImportFileError,
    ImportProgress,
    RowError,
    column_map_parse,
    import_run,
)


class ImportCommand(BaseCommand):
    """The shared command line of import_customers and import_purchases."""

    kind = ""

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="CSV file, UTF-8 (with or without BOM), header row first")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help="Read FIELD from the column named COLUMN (repeatable)",
        )
        parser.add_argument(
            "--date-format",
            default=None,
            help="strptime format of the dates, e.g. %%d/%%m/%%Y (default: ISO 8601 or YYYYMMDD)",
        )
        parser.add_argument(
            "--report", default=None, help="Write the rows that failed to this CSV file"
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar")
        if self.kind == "purchases":
            parser.add_argument(
                "--create-customers",
                action="store_true",
                help="Create a customer for an unknown customer_external_id",
            )
            parser.add_argument(
                "--strict-duplicates",
                action="store_true",
                help="Refuse a line without an order number that repeats an earlier line of "
                "the same customer exactly (by default each is a purchase of its own)",
            )

    def handle(self, *args, **options) -> None:
        path = options["file"]
        if not os.path.isfile(path):
            raise CommandError(f"{path}: no such file")
        try:
            column_map = column_map_parse(options["map"])
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        total = os.path.getsize(path)
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=f"Importing {self.kind}",
            disable=options["no_progress"],
            file=sys.stderr,
        )

        def on_progress(progress: ImportProgress) -> None:
            bar.total = progress.bytes_total
            bar.update(progress.bytes_done - bar.n)
            bar.set_postfix(rows=progress.result.read, failed=progress.result.failed)

        def on_error(error: RowError) -> None:
            tqdm.write(f"{path}: {error}", file=sys.stderr)

        report = (
            open(options["report"], "w", encoding="utf-8", newline="")
            if options["report"]
            else None
        )
        try:
            with open(path, "rb") as stream:
                result = import_run(
                    kind=self.kind,
                    stream=stream,
                    total_bytes=total,
                    column_map=column_map,
                    date_format=options["date_format"],
                    create_customers=options.get("create_customers", False),
                    strict_duplicates=options.get("strict_duplicates", False),
                    report=report,
                    on_progress=on_progress,
                    on_error=on_error,
                )
        except ImportFileError as exc:
            raise CommandError(f"{path}: {exc}") from None
        finally:
            bar.close()
            if report is not None:
                report.close()
        counts = result.counts()
        line = ", ".join(f"{name} {value}" for name, value in counts.items())
        if result.customers_created:
            line += f"; customers created {result.customers_created}"
        self.stdout.write(line)
        for notice in result.notices():
            self.stdout.write(f"Notice: {notice}")
        if result.failed:
            where = f" (see {options['report']})" if options["report"] else ""
            raise CommandError(f"{result.failed} rows failed{where}", returncode=1)


class Command(ImportCommand):
    help = (
        "Import purchases from a CSV file with a header row. Upserts by external_id, else by a "
        "key derived from the row. Fields: " + ", ".join(PURCHASE_FIELDS) + "."
    )
    kind = "purchases"
