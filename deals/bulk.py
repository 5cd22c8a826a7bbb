"""Bulk actions on the deal list: a new owner, deletion, an export, over the deals ticked or every
deal matching the list's filter. One request per action (page or API); the changes run as a
DealBulkJob, set-based (one statement per table whatever the number of deals), never a loop of
saves. The deals are looked up again when the job runs, under its author's rules:

- a salesperson's action reaches only the deals they may change (deals_visible_to: their own,
  every deal with CRM_SALES_SEE_ALL) and gives deals only to themselves;
- deletion is an administrator's (sales mark a deal lost instead);
- an export holds what the author may read.
"""

import csv
from collections.abc import Iterator, Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from crm.spreadsheet import spreadsheet_safe
from deals.models import Activity, Deal, DealBulkJob, DealLine, StageChange
from deals.selectors import deals_visible_to, deals_with_figures, sales_users, user_edits_deals
from deals.services import NOT_SALES, OWNER_REFUSED

MAX_IDS = 10_000
Action = DealBulkJob.Action
EXPORT = "export"
ACTIONS = [*Action.values, EXPORT]


def _filter_form(query: Mapping[str, str]):
    from deals.forms import DealFilterForm  # the list's own filter, so a bulk action sees its rows

    data = QueryDict(mutable=True)
    for key, value in query.items():
        if key in DealFilterForm.base_fields and isinstance(value, str | int):
            data[key] = str(value)
    return DealFilterForm(data)


def deals_bulk_clean_ids(ids) -> list[int]:
    if not isinstance(ids, list | tuple) or not ids:
        raise ValidationError({"ids": "Tick at least one deal, or choose every deal matching."})
    if len(ids) > MAX_IDS:
        raise ValidationError(
            {"ids": f"At most {MAX_IDS} ids at once: choose every deal matching the filter."}
        )
    cleaned = []
    for value in ids:
        text = str(value)
        if not text.isdigit() or len(text) > 12:
            raise ValidationError({"ids": f"{text[:20]!r} is not a deal number."})
        cleaned.append(int(text))
    return sorted(set(cleaned))


def deals_bulk_clean_filter(query) -> dict[str, str]:
    if not isinstance(query, Mapping):
        raise ValidationError({"filter": "Give the list's filter as an object of fields."})
    form = _filter_form(query)
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        raise ValidationError({"filter": problems})
    return {k: str(v) for k, v in query.items() if k in form.fields and k != "sort" and v != ""}


def deals_bulk_targets(
    *, actor: AbstractBaseUser, ids: list[int] | None, query: Mapping[str, str] | None
) -> QuerySet[Deal]:
    """The deals an action over `ids` (else every deal matching `query`) reaches for `actor`."""
    deals = deals_visible_to(actor)
    if ids is not None:
        return deals.filter(pk__in=ids)
    form = _filter_form(query or {})
    if not form.is_valid():
        return deals.none()
    return form.apply(deals)


def deals_bulk_check(*, actor: AbstractBaseUser, action: str, owner) -> None:
    if action == EXPORT:
        return
    if action not in Action.values:
        raise ValidationError({"action": f"Choose one of: {', '.join(ACTIONS)}."})
    if not user_edits_deals(actor):
        raise PermissionDenied("Only sales staff and admins change deals.")
    if action == Action.DELETE and not actor.is_superuser:
        raise PermissionDenied("Only an administrator may delete deals.")
    if action == Action.ASSIGN_OWNER:
        if owner is None:
            raise ValidationError({"owner": "Choose the new owner."})
        if not sales_users().filter(pk=owner.pk).exists():
            raise ValidationError({"owner": NOT_SALES})
        if not actor.is_superuser and owner.pk != actor.pk:
            raise ValidationError({"owner": OWNER_REFUSED})


def deal_bulk_job_create(
    *,
    actor: AbstractBaseUser,
    action: str,
    ids: list | None = None,
    query: Mapping[str, str] | None = None,
    owner=None,
) -> DealBulkJob:
    """Check the action and the selection, record the job and queue it once this commits."""
    from deals.tasks import deal_bulk_job_run_task

    deals_bulk_check(actor=actor, action=action, owner=owner)
    if action == EXPORT:
        raise ValidationError({"action": "An export is answered at once, not queued."})
    by_filter = ids is None
    ids = [] if by_filter else deals_bulk_clean_ids(ids)
    query = deals_bulk_clean_filter(query or {}) if by_filter else {}
    matched = deals_bulk_targets(actor=actor, ids=None if by_filter else ids, query=query).count()
    with transaction.atomic():
        job = DealBulkJob.objects.create(
            action=action,
            owner=owner if action == Action.ASSIGN_OWNER else None,
            deal_ids=ids,
            by_filter=by_filter,
            filter=query,
            matched=matched,
            created_by=actor,
        )
        transaction.on_commit(lambda: deal_bulk_job_run_task.delay(job.pk))
    return job


def _delete_deals(targets: QuerySet[Deal]) -> int:
    """Delete the deals and what hangs off them, one DELETE per table."""
    ids_sql, params = targets.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bulk_deal_ids ON COMMIT DROP AS "
            f"SELECT chosen.pk AS id FROM ({ids_sql}) AS chosen",
            params,
        )
        for model in (Activity, DealLine, StageChange):
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} "  # noqa: S608 - table names from models
                "WHERE deal_id IN (SELECT b.id FROM bulk_deal_ids AS b)"
            )
        cursor.execute(
            f"DELETE FROM {Deal._meta.db_table} "  # noqa: S608
            "WHERE id IN (SELECT b.id FROM bulk_deal_ids AS b)"
        )
        deleted = cursor.rowcount
        cursor.execute("DROP TABLE bulk_deal_ids")
        return deleted


def deal_bulk_job_run(*, job: DealBulkJob) -> DealBulkJob:
    """Apply the job: one UPDATE for a new owner; one DELETE per table for a deletion."""
    DealBulkJob.objects.filter(pk=job.pk).update(
        status=DealBulkJob.Status.RUNNING, started_at=timezone.now()
    )
    actor = job.created_by
    try:
        if actor is None:
            raise PermissionDenied("The person who asked for this is no longer here.")
        deals_bulk_check(actor=actor, action=job.action, owner=job.owner)
        targets = deals_bulk_targets(
            actor=actor,
            ids=None if job.by_filter else job.deal_ids,
            query=job.filter if job.by_filter else None,
        )
        with transaction.atomic():
            if job.action == Action.ASSIGN_OWNER:
                changed = (
                    Deal.objects.filter(pk__in=targets.values("pk"))
                    .exclude(owner=job.owner)
                    .update(owner=job.owner, updated_at=timezone.now())
                )
            else:
                changed = _delete_deals(targets)
    except (PermissionDenied, ValidationError) as error:
        messages = getattr(error, "messages", None) or [str(error)]
        DealBulkJob.objects.filter(pk=job.pk).update(
            status=DealBulkJob.Status.FAILED,
            message=" ".join(messages),
            finished_at=timezone.now(),
        )
    else:
        DealBulkJob.objects.filter(pk=job.pk).update(
            status=DealBulkJob.Status.DONE, changed=changed, finished_at=timezone.now()
        )
    job.refresh_from_db()
    return job


EXPORT_HEADER = [
    "id",
    "name",
    "pipeline",
    "stage",
    "amount",
    "currency",
    "probability",
    "expected_close_date",
    "owner",
    "account",
    "customer",
    "source",
    "next_step",
    "created_at",
]


def deals_export_rows(deals: QuerySet[Deal]) -> Iterator[list[str]]:
    """The deals as spreadsheet-safe CSV rows (header first), read in one streaming query."""
    yield EXPORT_HEADER
    rows = (
        deals_with_figures(deals)
        .order_by("id")
        .values_list(
            "id",
            "name",
            "pipeline__name",
            "stage__name",
            "amount",
            "currency",
            "effective_probability",
            "expected_close_date",
            "owner__username",
            "account__name",
            "customer_id",
            "source",
            "next_step",
            "created_at",
        )
    )
    for row in rows.iterator(chunk_size=2000):
        yield [spreadsheet_safe("" if v is None else str(v)) for v in row]


class _Echo:
    def write(self, value: str) -> str:
        return value


def deals_export_csv(deals: QuerySet[Deal]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in deals_export_rows(deals):
        yield writer.writerow(row)
