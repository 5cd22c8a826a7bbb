"""Import jobs: an uploaded file imported by a Celery task, its progress kept on the ImportJob."""

import logging
import tempfile
from typing import BinaryIO, TextIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from crm.roles import user_edits_customers
from customers.importing.customers import CUSTOMER_FIELDS, customers_import
from customers.importing.purchases import PURCHASE_FIELDS, purchases_import
from customers.importing.reading import (
    Columns,
    CsvSource,
    ErrorCallback,
    ImportFileError,
    ImportProgress,
    ImportResult,
    ProgressCallback,
)
from customers.importing.stored_files import import_files_lock, import_files_scrub_erased
from customers.models import ImportJob

logger = logging.getLogger(__name__)


def import_run(
    *,
    kind: str,
    stream: BinaryIO,
    total_bytes: int = 0,
    column_map: dict[str, str] | None = None,
    date_format: str | None = None,
    create_customers: bool = False,
    strict_duplicates: bool = False,
    user: AbstractBaseUser | None = None,
    report: TextIO | None = None,
    on_progress: ProgressCallback | None = None,
    on_error: ErrorCallback | None = None,
) -> ImportResult:
    """Run a customers or purchases import on a stream."""
    common = {
        "stream": stream,
        "total_bytes": total_bytes,
        "column_map": column_map,
        "date_format": date_format or None,
        "user": user,
        "report": report,
        "on_progress": on_progress,
        "on_error": on_error,
    }
    if kind == ImportJob.Kind.CUSTOMERS:
        return customers_import(**common)
    if kind == ImportJob.Kind.PURCHASES:
        return purchases_import(
            create_customers=create_customers, strict_duplicates=strict_duplicates, **common
        )
    raise ImportFileError(f"unknown import kind '{kind}'")


def import_header_check(*, kind: str, stream: BinaryIO, column_map: dict[str, str]) -> None:
    """Raise ImportFileError when the header cannot work with this kind and column map."""
    source = CsvSource(stream)
    if kind == ImportJob.Kind.CUSTOMERS:
        columns = Columns(
            header=source.header,
            fields=CUSTOMER_FIELDS,
            column_map=column_map,
            allow_attributes=True,
        )
        columns.require_one_of("external_id", "email")
    else:
        columns = Columns(header=source.header, fields=PURCHASE_FIELDS, column_map=column_map)
        columns.require_one_of("customer_external_id", "customer_email")
        columns.require_one_of("purchased_at")
        columns.require_one_of("amount")


def import_job_create(
    *,
    user: AbstractBaseUser,
    kind: str,
    file: UploadedFile,
    column_map: dict[str, str] | None = None,
    date_format: str = "",
    create_customers: bool = False,
    strict_duplicates: bool = False,
) -> ImportJob:
    """Store the upload as an ImportJob and queue its import once the transaction commits."""
    if not user_edits_customers(user):
        raise PermissionDenied("Only sales staff and admins may import.")
    from customers.tasks import import_run_task

    with transaction.atomic():
        job = ImportJob.objects.create(
            kind=kind,
            file=file,
            original_name=(file.name or "").replace("\x00", "")[:255],
            total_bytes=file.size or 0,
            created_by=user,
            options={
                "column_map": column_map or {},
                "date_format": date_format,
                "create_customers": create_customers,
                "strict_duplicates": strict_duplicates,
            },
        )
        transaction.on_commit(lambda: import_run_task.delay(job.pk))
    return job


def import_job_run(*, job: ImportJob) -> ImportJob:
    """Import a job's file, keeping its progress and counts up to date as batches go in.

    Safe to run twice: a finished job is left alone, and a job interrupted half-way (a worker
    lost) runs again, which the upsert makes harmless.
    """
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        return job
    job.status = ImportJob.Status.RUNNING
    job.started_at = timezone.now()
    job.save(update_fields=["status", "started_at"])

    def on_progress(progress: ImportProgress) -> None:
        counts = progress.result
        ImportJob.objects.filter(pk=job.pk).update(
            processed_bytes=progress.bytes_done,
            total_bytes=progress.bytes_total,
            rows_read=counts.read,
            rows_created=counts.created,
            rows_updated=counts.updated,
            rows_unchanged=counts.unchanged,
            rows_failed=counts.failed,
        )

    options = job.options or {}
    user = job.created_by
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as report:
        try:
            with job.file.open("rb") as stream:
                result = import_run(
                    kind=job.kind,
                    stream=stream,
                    total_bytes=job.total_bytes,
                    column_map=options.get("column_map") or {},
                    date_format=options.get("date_format") or None,
                    create_customers=bool(options.get("create_customers")),
                    strict_duplicates=bool(options.get("strict_duplicates")),
                    user=user,
                    report=report,
                    on_progress=on_progress,
                )
        except ImportFileError as exc:
            return _job_finish(job, status=ImportJob.Status.FAILED, message=str(exc))
        except Exception:
            logger.exception("Import job %s failed", job.pk)
            _job_finish(
                job,
                status=ImportJob.Status.FAILED,
                message="The import stopped on an unexpected error; the rows imported so far are kept.",
            )
            raise
        job.refresh_from_db()
        job.rows_read = result.read
        job.rows_created = result.created
        job.rows_updated = result.updated
        job.rows_unchanged = result.unchanged
        job.rows_failed = result.failed
        job.processed_bytes = job.total_bytes
        message = f"{result.read} rows read: {result.created} created, {result.updated} updated, "
        message += f"{result.unchanged} unchanged, {result.failed} failed."
        if result.customers_created:
            message += f" {result.customers_created} customers created."
        for notice in result.notices():
            message += f" {notice}"
        if result.failed:
            report.flush()
            report.seek(0)
        return _job_finish(
            job,
            status=ImportJob.Status.DONE,
            message=message,
            report=report.buffer if result.failed else None,
        )


def _job_finish(
    job: ImportJob, *, status: str, message: str, report: BinaryIO | None = None
) -> ImportJob:
    """Store the error report and the outcome, with no trace of anyone erased meanwhile."""
    with transaction.atomic():
        # Waits for an erasure scrubbing the files now (it committed, so it is in the log), and
        # makes an erasure starting now wait for the report (so it scrubs it).
        import_files_lock(shared=False)
        job.refresh_from_db(fields=["file"])  # an erasure may have stored it under a new name
        if report is not None:
            job.error_report.save(
                f"import-{job.pk}-errors.csv", File(report, name="errors.csv"), save=False
            )
        import_files_scrub_erased(job=job)
        job.status = status
        job.message = message.replace("\x00", "\\x00")  # PostgreSQL stores no NUL
        job.finished_at = timezone.now()
        job.save(
            update_fields=[
                "status",
                "message",
                "finished_at",
                "rows_read",
                "rows_created",
                "rows_updated",
                "rows_unchanged",
                "rows_failed",
                "processed_bytes",
                "error_report",
            ]
        )
    return job
