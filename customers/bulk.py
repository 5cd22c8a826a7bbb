"""The customer and account lists' bulk actions, on the shared machinery of crm/bulk.py: a new
owner, a tag added or removed, deletion and an export, over the rows ticked or every row matching
the list's filter. Each action is set-based over a batch of ids (one statement per table), marks
the customers whose membership may change (customers.marks) and writes its audit row.

- Sales and admins change customers and accounts; sales reach only the ones they may see (their
  own, unless CRM_SALES_SEE_ALL) and give them only to themselves (customers.services' rule).
- Deletion is an administrator's; it is not an erasure (no suppression entry): a person who asks
  to be forgotten goes through a data-subject request.
- An export holds the columns the author's role may read (export_columns_for), and is audited.
"""

from collections.abc import Iterator, Mapping

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.db.models import Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from crm.bulk import BulkAction, BulkList, bulk_list_register
from crm.roles import Role, user_edits_customers, user_roles
from crm.spreadsheet import spreadsheet_safe
from crm.text import text_problem
from customers.forms import AccountFilterForm, CustomerFilterForm
from customers.marks import customers_mark, customers_mark_where
from customers.models import Account, Customer, Tag
from customers.registry import access_record
from customers.search import account_search_q
from customers.selectors import accounts_visible_to
from customers.services import OWNER_REFUSED, tags_get_or_create

NOT_SAVED = {"sort", "size", "after", "page"}


def _form(form_class, query: Mapping):
    data = QueryDict(mutable=True)
    for key, value in (query or {}).items():
        if isinstance(value, str | int):
            data[key] = str(value)
    return form_class(data)


def _clean_filter(form_class, query) -> dict[str, str]:
    if not isinstance(query, Mapping):
        raise ValidationError({"filter": "Give the list's filter as an object of fields."})
    form = _form(form_class, query)
    if not form.is_valid():
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        raise ValidationError({"filter": problems})
    return {
        k: str(v)
        for k, v in query.items()
        if k in form.fields and k not in NOT_SAVED and v not in ("", None)
    }


def customers_bulk_clean_filter(query) -> dict[str, str]:
    return _clean_filter(CustomerFilterForm, query)


def accounts_bulk_clean_filter(query) -> dict[str, str]:
    return _clean_filter(AccountFilterForm, query)


def customers_bulk_targets(
    actor: AbstractBaseUser, ids: list[int] | None, query: Mapping | None
) -> QuerySet[Customer]:
    """The customers an action over `ids` (else every customer matching `query`) reaches."""
    from customers.views.lists import customers_matching

    form = _form(CustomerFilterForm, {} if ids is not None else query)
    if ids is not None:
        return customers_matching(actor, form).filter(pk__in=ids)
    if not form.is_valid():
        return Customer.objects.none()
    return customers_matching(actor, form)


def accounts_matching(actor: AbstractBaseUser, form: AccountFilterForm) -> QuerySet[Account]:
    """The accounts the user may see, narrowed by the account list's valid filters."""
    accounts = accounts_visible_to(actor)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["q"]:
            accounts = accounts.filter(account_search_q(data["q"]))
        if data["country"]:
            accounts = accounts.filter(country=data["country"])
        if data["kind"]:
            accounts = accounts.filter(kind=data["kind"])
    return accounts


def accounts_bulk_targets(
    actor: AbstractBaseUser, ids: list[int] | None, query: Mapping | None
) -> QuerySet[Account]:
    if ids is not None:
        return accounts_visible_to(actor).filter(pk__in=ids)
    form = _form(AccountFilterForm, query)
    if not form.is_valid():
        return Account.objects.none()
    return accounts_matching(actor, form)


# Checks ------------------------------------------------------------------------------------------


def _require_editor(actor: AbstractBaseUser) -> None:
    if not user_edits_customers(actor):
        raise PermissionDenied("Only sales staff and admins change customers and accounts.")


def _owners():
    """Who can own customers and accounts: sales staff and administrators."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(groups__name=Role.SALES) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


def _owner_check(actor: AbstractBaseUser, params: Mapping) -> dict:
    _require_editor(actor)
    owner = params.get("owner")
    owner_id = getattr(owner, "pk", owner)
    if owner_id in (None, ""):
        raise ValidationError({"owner": "Choose the new owner."})
    if not str(owner_id).isdigit() or not _owners().filter(pk=int(owner_id)).exists():
        raise ValidationError({"owner": "Choose a salesperson or an administrator."})
    if not actor.is_superuser and int(owner_id) != actor.pk:
        raise ValidationError({"owner": OWNER_REFUSED})
    return {"owner": int(owner_id)}


def _owner_field(user: AbstractBaseUser):
    if not user_edits_customers(user):
        return None
    owners = _owners() if user.is_superuser else get_user_model().objects.filter(pk=user.pk)
    field = forms.ModelChoiceField(queryset=owners, label="New owner", empty_label="—")
    field.label_from_instance = lambda u: u.get_full_name() or u.get_username()
    return field


def _owner_facts(params: dict) -> list[tuple[str, str]]:
    owner = get_user_model().objects.filter(pk=params.get("owner")).first()
    return [("New owner", owner.get_username() if owner else "?")]


def _tag_check(actor: AbstractBaseUser, params: Mapping) -> dict:
    _require_editor(actor)
    name = str(params.get("tag") or "").strip()
    if not name:
        raise ValidationError({"tag": "Name the tag."})
    if len(name) > 50 or text_problem(name):
        raise ValidationError({"tag": "A tag is up to 50 characters of plain text."})
    return {"tag": name}


def _tag_field(user: AbstractBaseUser):
    if not user_edits_customers(user):
        return None
    return forms.CharField(max_length=50, label="Tag", help_text="Added or removed")


def _tag_facts(params: dict) -> list[tuple[str, str]]:
    return [("Tag", params.get("tag", ""))]


def _delete_check(actor: AbstractBaseUser, params: Mapping) -> dict:
    _require_editor(actor)
    if not actor.is_superuser:
        raise PermissionDenied("Only an administrator may delete in bulk.")
    return {}


# Set-based changes over one batch of ids -------------------------------------------------------


def _through(model) -> tuple[str, str, str]:
    through = model.tags.through
    owner_column = through._meta.get_field(model._meta.model_name).column
    return through._meta.db_table, owner_column, through._meta.get_field("tag").column


def _tag_add(model, ids: list[int], name: str) -> int:
    (tag,) = tags_get_or_create(names=[name])
    table, own, tag_column = _through(model)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({own}, {tag_column}) "  # noqa: S608 - names from the models
            "SELECT t.id, %s FROM unnest(%s::bigint[]) AS t(id) "
            f"ON CONFLICT ({own}, {tag_column}) DO NOTHING",
            [tag.pk, ids],
        )
        return cursor.rowcount


def _tag_remove(model, ids: list[int], name: str) -> int:
    tag = Tag.objects.filter(name__iexact=name).first()
    if tag is None:
        return 0
    table, own, tag_column = _through(model)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {tag_column} = %s AND {own} = ANY(%s)",  # noqa: S608
            [tag.pk, ids],
        )
        return cursor.rowcount


def _customers_owner_apply(ids: list[int], params: dict) -> int:
    changed = (
        Customer.objects.filter(pk__in=ids)
        .exclude(owner_id=params["owner"])
        .update(owner_id=params["owner"], updated_at=timezone.now())
    )
    customers_mark(customer_ids=ids)
    return changed


def _customers_tag_add_apply(ids: list[int], params: dict) -> int:
    changed = _tag_add(Customer, ids, params["tag"])
    customers_mark(customer_ids=ids)
    return changed


def _customers_tag_remove_apply(ids: list[int], params: dict) -> int:
    changed = _tag_remove(Customer, ids, params["tag"])
    customers_mark(customer_ids=ids)
    return changed


def _customers_delete_apply(ids: list[int], params: dict) -> int:
    # Django's deletion collector: one DELETE per related table for the batch (the batch is
    # bounded, so the statements are too), following every app's on_delete rule.
    deleted, per_model = Customer.objects.filter(pk__in=ids).delete()
    return per_model.get(Customer._meta.label, 0)


def _accounts_owner_apply(ids: list[int], params: dict) -> int:
    return (
        Account.objects.filter(pk__in=ids)
        .exclude(owner_id=params["owner"])
        .update(owner_id=params["owner"], updated_at=timezone.now())
    )


def _accounts_delete_apply(ids: list[int], params: dict) -> int:
    # Account rules (account size, kind, ...) change for the members: mark them before they go.
    customers_mark_where(
        select_ids=f"SELECT c.id FROM {Customer._meta.db_table} c "  # noqa: S608
        "WHERE c.account_id = ANY(%s)",
        params=[ids],
    )
    deleted, per_model = Account.objects.filter(pk__in=ids).delete()
    return per_model.get(Account._meta.label, 0)


def _audited(apply, *, object_kind: str, action: str):
    """The apply, writing its audit row in the batch's transaction (personal data changed)."""

    def run(ids: list[int], params: dict, actor: AbstractBaseUser) -> int:
        changed = apply(ids, params)
        access_record(
            user=actor,
            action=action,
            object_kind=object_kind,
            details={"bulk": True, "rows": len(ids), "changed": changed, **params},
        )
        return changed

    return run


def _actions(kind: str, *, owner_apply, tag_add, tag_remove, delete_apply, noun: str):
    return {
        "assign_owner": BulkAction(
            name="assign_owner",
            label="Assign owner",
            check=_owner_check,
            apply=_audited(owner_apply, object_kind=kind, action="change"),
            title=f"Give {noun} a new owner",
            button="Reassign {count} {noun}",
            describe=_owner_facts,
            param="owner",
            field=_owner_field,
        ),
        "add_tag": BulkAction(
            name="add_tag",
            label="Add a tag",
            check=_tag_check,
            apply=_audited(tag_add, object_kind=kind, action="change"),
            title=f"Tag {noun}",
            button="Tag {count} {noun}",
            describe=_tag_facts,
            param="tag",
            field=_tag_field,
        ),
        "remove_tag": BulkAction(
            name="remove_tag",
            label="Remove a tag",
            check=_tag_check,
            apply=_audited(tag_remove, object_kind=kind, action="change"),
            title=f"Remove a tag from {noun}",
            button="Untag {count} {noun}",
            describe=_tag_facts,
            param="tag",
            field=_tag_field,
        ),
        "delete": BulkAction(
            name="delete",
            label="Delete",
            check=_delete_check,
            apply=_audited(delete_apply, object_kind=kind, action="delete"),
            title=f"Delete {noun}",
            button="Delete {count} {noun}",
            warning=f"The {noun} and everything recorded on them are deleted for good. "
            "This is not an erasure: a person who asked to be forgotten goes through a "
            "data-subject request.",
            danger=True,
        ),
    }


# Exports -----------------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def customers_bulk_export(actor: AbstractBaseUser, rows: QuerySet[Customer]) -> Iterator[str]:
    from customers.views.lists import _export_rows, export_columns_for

    columns = export_columns_for(actor)
    access_record(
        user=actor,
        action="export",
        object_kind="customer_list",
        details={"bulk": True, "columns": len(columns)},
    )
    return _export_rows(rows.order_by("pk"), columns)


ACCOUNT_COLUMNS = ["id", "name", "kind", "industry", "country", "city", "owner", "tags"]


def accounts_bulk_export(actor: AbstractBaseUser, rows: QuerySet[Account]) -> Iterator[str]:
    import csv

    writer = csv.writer(_Echo())
    access_record(user=actor, action="export", object_kind="account_list", details={"bulk": True})

    def lines() -> Iterator[str]:
        yield writer.writerow(ACCOUNT_COLUMNS)
        values = rows.order_by("pk").values_list(
            "id", "name", "kind", "industry", "country", "city", "owner__username"
        )
        batch: list[tuple] = []

        def flush(batch: list[tuple]) -> Iterator[str]:
            tags: dict[int, list[str]] = {}
            through = Account.tags.through.objects.filter(
                account_id__in=[r[0] for r in batch]
            ).values_list("account_id", "tag__name")
            for account_id, name in through.order_by("tag__name"):
                tags.setdefault(account_id, []).append(name)
            for row in batch:
                cells = ["" if v is None else str(v) for v in row]
                cells.append(";".join(tags.get(row[0], [])))
                yield writer.writerow([spreadsheet_safe(c) for c in cells])

        for row in values.iterator(chunk_size=2000):
            batch.append(row)
            if len(batch) == 2000:
                yield from flush(batch)
                batch = []
        if batch:
            yield from flush(batch)

    return lines()


def _reads_customers(user: AbstractBaseUser) -> bool:
    return user.is_authenticated and (user.is_superuser or bool(user_roles(user)))


def customers_bulk_register() -> None:
    bulk_list_register(
        BulkList(
            name="customers",
            noun="customers",
            list_url="customers:customer_list",
            targets=customers_bulk_targets,
            clean_filter=customers_bulk_clean_filter,
            export=customers_bulk_export,
            may_read=_reads_customers,
            actions=_actions(
                "customer",
                owner_apply=_customers_owner_apply,
                tag_add=_customers_tag_add_apply,
                tag_remove=_customers_tag_remove_apply,
                delete_apply=_customers_delete_apply,
                noun="customers",
            ),
        )
    )
    bulk_list_register(
        BulkList(
            name="accounts",
            noun="accounts",
            list_url="customers:account_list",
            targets=accounts_bulk_targets,
            clean_filter=accounts_bulk_clean_filter,
            export=accounts_bulk_export,
            may_read=_reads_customers,
            actions=_actions(
                "account",
                owner_apply=_accounts_owner_apply,
                tag_add=lambda ids, p: _tag_add(Account, ids, p["tag"]),
                tag_remove=lambda ids, p: _tag_remove(Account, ids, p["tag"]),
                delete_apply=_accounts_delete_apply,
                noun="accounts",
            ),
        )
    )
