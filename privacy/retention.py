"""Retention: anonymise customers with no purchase, event or consent activity for
PRIVACY_RETENTION_YEARS years (0 switches the policy off), and delete the uploaded files and error
reports of imports finished more than PRIVACY_IMPORT_FILE_RETENTION_DAYS days ago (0: off). Run
daily by Celery beat; the dry run reports what it would do without doing it."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from customers.importing.stored_files import import_files_expire
from customers.models import Customer, Event, Purchase
from privacy.audit import audit_record
from privacy.deadlines import months_add
from privacy.erasure import ERASED_SOURCE, customers_erase
from privacy.models import ConsentRecord, Suppression


@dataclass(frozen=True)
class RetentionReport:
    years: int
    cutoff: dt.datetime | None
    candidates: int
    sample_ids: list[int]
    anonymised: int
    dry_run: bool
    import_files: int = 0  # deleted (or, in a dry run, to delete)
    import_file_days: int = 0


def retention_cutoff(*, years: int, now: dt.datetime | None = None) -> dt.datetime:
    now = now or timezone.now()
    day = months_add(now.date(), -12 * years)
    return now.replace(year=day.year, month=day.month, day=day.day)


def retention_candidates(*, years: int, now: dt.datetime | None = None) -> QuerySet[Customer]:
    """Customers created before the cutoff with no purchase, event or consent record since."""
    cutoff = retention_cutoff(years=years, now=now)
    recent = {
        "recent_purchase": Purchase.objects.filter(
            customer_id=OuterRef("pk"), purchased_at__gte=cutoff
        ),
        "recent_event": Event.objects.filter(customer_id=OuterRef("pk"), occurred_at__gte=cutoff),
        "recent_consent": ConsentRecord.objects.filter(
            customer_id=OuterRef("pk"), recorded_at__gte=cutoff
        ),
    }
    return (
        Customer.objects.filter(created_at__lt=cutoff)
        .exclude(source=ERASED_SOURCE)
        .exclude(Exists(recent["recent_purchase"]))
        .exclude(Exists(recent["recent_event"]))
        .exclude(Exists(recent["recent_consent"]))
        .order_by("pk")
    )


def retention_run(
    *,
    dry_run: bool = True,
    years: int | None = None,
    now: dt.datetime | None = None,
    limit: int | None = None,
) -> RetentionReport:
    """Apply (or, in a dry run, only report) the retention policy."""
    years = settings.PRIVACY_RETENTION_YEARS if years is None else years
    file_days = settings.PRIVACY_IMPORT_FILE_RETENTION_DAYS
    files = import_files_expire(days=file_days, now=now, dry_run=dry_run) if file_days > 0 else 0
    if years <= 0:
        return RetentionReport(
            years=0,
            cutoff=None,
            candidates=0,
            sample_ids=[],
            anonymised=0,
            dry_run=dry_run,
            import_files=files,
            import_file_days=file_days,
        )
    candidates = retention_candidates(years=years, now=now)
    count = candidates.count()
    sample = list(candidates.values_list("pk", flat=True)[:50])
    anonymised = 0
    if not dry_run:
        ids = list(
            candidates.values_list("pk", flat=True)[:limit]
            if limit
            else candidates.values_list("pk", flat=True)
        )
        anonymised = customers_erase(customer_ids=ids, reason=Suppression.Reason.RETENTION)
        audit_record(
            actor=None,
            action="erase",
            object_kind="retention_run",
            details={"years": years, "customers": anonymised, "import_files": files},
        )
    return RetentionReport(
        years=years,
        cutoff=retention_cutoff(years=years, now=now),
        candidates=count,
        sample_ids=sample,
        anonymised=anonymised,
        dry_run=dry_run,
        import_files=files,
        import_file_days=file_days,
    )
