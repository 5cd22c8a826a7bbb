"""The deal list's bulk actions, on the shared machinery of crm/bulk.py: a new owner, deletion, an
export, over the deals ticked or every deal matching the list's filter. One request per action
(page or API); the changes run as a crm BulkJob, set-based (one statement per table and batch),
never a loop of saves. The deals are looked up again when the job runs, under its author's rules:

- a salesperson's action reaches only the deals they may change (deals_visible_to: their own,
  every deal with CRM_SALES_SEE_ALL) and gives deals only to themselves;
- deletion is an administrator's (sales mark a deal lost instead);
- an export holds what the author may read.
"""

import csv
from collections.abc import Iterator, Mapping

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import QuerySet
from django.http import QueryDict
from django.utils import timezone

from crm.bulk import BulkAction, BulkList, bulk_list_register
from crm.spreadsheet import spreadsheet_safe
from deals.models import Activity, Deal, DealLine, StageChange
from deals.selectors import (
    deals_visible_to,
    deals_with_figures,
    sales_users,
    user_edits_deals,
    user_reads_deals,
)
from deals.services import NOT_SALES, OWNER_REFUSED


def _filter_form(query: Mapping[str, str]):
    from deals.forms import DealFilterForm  # the list's own filter, so a bulk action sees its rows

    data = QueryDict(mutable=True)
    for key, value in query.items():
        if key in DealFilterForm.base_fields and isinstance(value, str | int):
            data[key] = str(value)
    return DealFilterForm(data)


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


def _assign_owner_check(actor: AbstractBaseUser, params: Mapping) -> dict:
    if not user_edits_deals(actor):
        raise PermissionDenied("Only sales staff and admins change deals.")
    owner = params.get("owner")
    owner_id = getattr(owner, "pk", owner)
    if owner_id in (None, ""):
        raise ValidationError({"owner": "Choose the new owner."})
    if not str(owner_id).isdigit() or not sales_users().filter(pk=int(owner_id)).exists():
        raise ValidationError({"owner": NOT_SALES})
    if not actor.is_superuser and int(owner_id) != actor.pk:
        raise ValidationError({"owner": OWNER_REFUSED})
    return {"owner": int(owner_id)}


def _assign_owner_apply(ids: list[int], params: dict, actor: AbstractBaseUser) -> int:
    return (
        Deal.objects.filter(pk__in=ids)
        .exclude(owner_id=params["owner"])
        .update(owner_id=params["owner"], updated_at=timezone.now())
    )


def _owner_facts(params: dict) -> list[tuple[str, str]]:
    owner = sales_users().filter(pk=params.get("owner")).first()
    return [("New owner", owner.get_username() if owner else "?")]


def _owner_field(user: AbstractBaseUser):
    if not user_edits_deals(user):
        return None
    from deals.forms import _person

    field = forms.ModelChoiceField(queryset=sales_users(), label="New owner", empty_label="—")
    field.label_from_instance = _person
    return field


def _delete_check(actor: AbstractBaseUser, params: Mapping) -> dict:
    if not user_edits_deals(actor):
        raise PermissionDenied("Only sales staff and admins change deals.")
    if not actor.is_superuser:
        raise PermissionDenied("Only an administrator may delete deals.")
    return {}


def _delete_apply(ids: list[int], params: dict, actor: AbstractBaseUser) -> int:
    """Delete the deals and what hangs off them, one DELETE per table."""
    with connection.cursor() as cursor:
        for model in (Activity, DealLine, StageChange):
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} "  # noqa: S608 - table names from models
                "WHERE deal_id = ANY(%s)",
                [ids],
            )
        cursor.execute(
            f"DELETE FROM {Deal._meta.db_table} WHERE id = ANY(%s)",  # noqa: S608
            [ids],
        )
        return cursor.rowcount


ASSIGN_OWNER = BulkAction(
    name="assign_owner",
    label="Assign owner",
    check=_assign_owner_check,
    apply=_assign_owner_apply,
    title="Give deals a new owner",
    button="Reassign {count} {noun}",
    describe=_owner_facts,
    param="owner",
    field=_owner_field,
)
DELETE = BulkAction(
    name="delete",
    label="Delete",
    check=_delete_check,
    apply=_delete_apply,
    title="Delete deals",
    button="Delete {count} {noun}",
    warning="The deals, their lines, history and activities are deleted for good.",
    danger=True,
)


def deals_bulk_register() -> None:
    bulk_list_register(
        BulkList(
            name="deals",
            noun="deals",
            list_url="deals:list",
            targets=lambda actor, ids, query: deals_bulk_targets(actor=actor, ids=ids, query=query),
            clean_filter=deals_bulk_clean_filter,
            export=lambda actor, rows: deals_export_csv(rows),
            may_read=user_reads_deals,
            actions={a.name: a for a in (ASSIGN_OWNER, DELETE)},
        )
    )


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
