"""The customer and account lists: search, filters, sort, keyset pages, CSV export, global search."""

import csv
import re
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from crm.bulk_views import bulk_form_for
from crm.list_views import saved_views_for
from crm.roles import Role, user_edits_customers, user_roles
from crm.spreadsheet import spreadsheet_safe
from customers.bulk import accounts_matching
from customers.forms import AccountFilterForm, CustomerFilterForm, customers_with_consent
from customers.models import Customer
from customers.registry import access_record
from customers.search import (
    ACCOUNT_ORDERS,
    CUSTOMER_ORDERS,
    account_search_q,
    customer_search_conditions,
    customers_search,
    customers_search_ready,
)
from customers.selectors import (
    accounts_visible_to,
    customer_fields_hidden_from,
    customers_visible_to,
)
from customers.views.access import staff_required
from customers.views.pagination import keyset_page


def customers_filtered(
    request: HttpRequest, form: CustomerFilterForm, *, search: bool = True
) -> QuerySet[Customer]:
    """The customers the user may see, narrowed by the list's valid filters; without `search`,
    the caller applies the search term itself (the list pages it branch by branch)."""
    return customers_matching(request.user, form, search=search)


def customers_matching(
    user, form: CustomerFilterForm, *, search: bool = True
) -> QuerySet[Customer]:
    """customers_filtered for a user rather than a request (bulk actions find their rows again
    when the job runs, with no request)."""
    customers = customers_visible_to(user)
    form.is_valid()  # the valid filters apply; the invalid ones show their error
    data = form.cleaned_data
    if search and data.get("q"):
        customers = customers_search(
            customers, data["q"], unreadable=customer_fields_hidden_from(user)
        )
    if data.get("country"):
        customers = customers.filter(country=data["country"])
    if data.get("owner"):
        customers = customers.filter(owner=data["owner"])
    if data.get("tag"):
        customers = customers.filter(tags=data["tag"])
    if data.get("consent"):
        customers = customers_with_consent(customers, data["consent"])
    for extra in form.extra_filters:
        if data.get(extra.key):
            customers = extra.apply(customers, data[extra.key])
    return customers


def import_url() -> str:
    try:
        return reverse("customer_import:list")
    except NoReverseMatch:
        return "/customers/import/"


# The headers a person clicks to sort: (column, the sort key, the first click's direction).
CUSTOMER_HEADERS = (("name", "name", ""), ("lifetime_value", "lifetime_value", "-"),
                    ("last_purchase_at", "last_purchase_at", "-"))  # fmt: skip
ACCOUNT_HEADERS = (("name", "name", ""),)


def sort_headers(request: HttpRequest, sort: str, headers) -> dict[str, dict]:
    """Each sortable column's link (the other direction when it is the current sort) and its
    aria-sort; every sort offered reads only fields every role may read."""
    query = request.GET.copy()
    for name in ("sort", "after", "page"):
        query.pop(name, None)
    links = {}
    for column, key, first in headers:
        if sort == key:
            following, state = f"-{key}", "ascending"
        elif sort == f"-{key}":
            following, state = key, "descending"
        else:
            following, state = f"{first}{key}", "none"
        query["sort"] = following
        links[column] = {"url": f"?{query.urlencode()}", "aria_sort": state}
    return links


def list_query(request: HttpRequest, *dropped: str) -> str:
    query = request.GET.copy()
    for name in dropped:
        query.pop(name, None)
    return query.urlencode()


@staff_required
def customer_list(request: HttpRequest) -> HttpResponse:
    form = CustomerFilterForm(request.GET or None)
    if request.GET:
        customers = customers_filtered(request, form, search=False)
        data = form.cleaned_data
    else:
        customers, data = customers_visible_to(request.user), {}
    sort = data.get("sort") or "name"
    size = data.get("size") or 50
    customers = customers_search_ready(customers)
    customers = customers.select_related("owner", "account").prefetch_related("tags")
    page = keyset_page(
        customers,
        order=CUSTOMER_ORDERS[sort],
        cursor=request.GET.get("after", ""),
        size=size,
        any_of=customer_search_conditions(
            data.get("q") or "", unreadable=customer_fields_hidden_from(request.user)
        ),
    )
    context = {
        "form": form,
        "page": page,
        "sort": sort,
        "query": list_query(request, "after"),
        "count_query": list_query(request, "after", "sort", "size"),
        "headers": sort_headers(request, sort, CUSTOMER_HEADERS),
        "can_edit": user_edits_customers(request.user),
        "import_url": import_url(),
        "bulk_form": bulk_form_for(
            request, "customers", query=list_query(request, "after", "sort", "size")
        ),
        "saved_views": saved_views_for(request, "customers"),
        "view_query": list_query(request, "after"),
    }
    template = (
        "customers/_customer_rows.html"
        if request.htmx and request.htmx.target == "customer-results"
        else "customers/customer_list.html"
    )
    return render(request, template, context)


@staff_required
def customer_count(request: HttpRequest) -> HttpResponse:
    """How many customers the list's filter matches, asked for once the list is shown (a count
    of a million rows should not hold the first page back)."""
    form = CustomerFilterForm(request.GET or None)
    customers = (
        customers_filtered(request, form) if request.GET else customers_visible_to(request.user)
    )
    return render(request, "customers/_list_count.html", {"count": customers.count()})


@staff_required
def account_list(request: HttpRequest) -> HttpResponse:
    form = AccountFilterForm(request.GET or None)
    accounts = accounts_matching(request.user, form)
    sort = form.cleaned_data.get("sort") if form.is_bound and form.is_valid() else "name"
    total = accounts.count()
    accounts = accounts.select_related("owner").prefetch_related("tags")
    page = keyset_page(
        accounts, order=ACCOUNT_ORDERS[sort], cursor=request.GET.get("after", ""), size=50
    )
    return render(
        request,
        "customers/account_list.html",
        {
            "form": form,
            "page": page,
            "total": total,
            "sort": sort,
            "query": list_query(request, "after"),
            "headers": sort_headers(request, sort, ACCOUNT_HEADERS),
            "can_edit": user_edits_customers(request.user),
            "import_url": import_url(),
            "bulk_form": bulk_form_for(
                request, "accounts", query=list_query(request, "after", "sort")
            ),
            "saved_views": saved_views_for(request, "accounts"),
            "view_query": list_query(request, "after"),
        },
    )


@staff_required
def global_search(request: HttpRequest) -> HttpResponse:
    """Results as you type in the top bar: customers and accounts the user may see."""
    term = request.GET.get("q", "").strip()[:100]
    customers: list = []
    accounts: list = []
    if len(term) >= 2:
        visible = customers_search_ready(customers_visible_to(request.user))
        customers = keyset_page(
            visible,
            order=CUSTOMER_ORDERS["name"],
            cursor="",
            size=8,
            any_of=customer_search_conditions(
                term, unreadable=customer_fields_hidden_from(request.user)
            ),
        ).rows
        accounts = list(
            accounts_visible_to(request.user)
            .filter(account_search_q(term))
            .order_by("name", "id")[:5]
        )
    return render(
        request,
        "customers/_global_search.html",
        {
            "term": term,
            "customers": customers,
            "accounts": accounts,
            "hidden": customer_fields_hidden_from(request.user),
        },
    )


PICKER_SIZE = 8
_PICKER_TARGET = re.compile(r"[A-Za-z0-9_-]{1,80}")


@staff_required
def customer_pick(request: HttpRequest) -> HttpResponse:
    """The options of a customer picker (crm.forms.RecordPicker) as the user types: customers
    the user may see, found like the top-bar search (no phone for those who may not read it),
    by name with their email and account."""
    term = request.GET.get("q", "")
    if not term:
        term = next((v for k, v in request.GET.items() if k.endswith("_search")), "")
    term = term.strip()[:100]
    exclude = request.GET.get("exclude", "")
    target = request.headers.get("HX-Target", "")
    options: list = []
    if len(term) >= 2:
        visible = customers_search_ready(customers_visible_to(request.user))
        if exclude.isdigit():
            visible = visible.exclude(pk=int(exclude))
        options = keyset_page(
            visible.select_related("account"),
            order=CUSTOMER_ORDERS["name"],
            cursor="",
            size=PICKER_SIZE,
            any_of=customer_search_conditions(
                term, unreadable=customer_fields_hidden_from(request.user)
            ),
        ).rows
    return render(
        request,
        "customers/_picker_options.html",
        {
            "term": term,
            "options": options,
            "prefix": target if _PICKER_TARGET.fullmatch(target) else "picker",
            "hidden": customer_fields_hidden_from(request.user),
        },
    )


# Export columns per role: sales and admins work with contact details; marketing gets what
# targeting needs without phone or birth date; privacy officers get identification only.
EXPORT_COLUMNS = {
    "full": [
        "id",
        "external_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "birth_date",
        "country",
        "region",
        "city",
        "postal_code",
        "language",
        "account",
        "owner",
        "tags",
        "lifetime_value",
        "purchase_count",
        "average_order_value",
        "first_purchase_at",
        "last_purchase_at",
        "created_at",
    ],
    Role.MARKETING: [
        "id",
        "external_id",
        "first_name",
        "last_name",
        "email",
        "country",
        "region",
        "city",
        "language",
        "income_band",
        "tags",
        "lifetime_value",
        "purchase_count",
        "average_order_value",
        "first_purchase_at",
        "last_purchase_at",
    ],
    Role.PRIVACY: [
        "id",
        "external_id",
        "first_name",
        "last_name",
        "email",
        "country",
        "created_at",
    ],
}


def export_columns_for(user) -> list[str]:
    """The role's columns, without any field the user may not read (the visibility map has the
    last word, whatever a column list says)."""
    roles = user_roles(user)
    if user.is_superuser or Role.SALES in roles:
        columns = EXPORT_COLUMNS["full"]
    elif Role.MARKETING in roles:
        columns = EXPORT_COLUMNS[Role.MARKETING]
    else:
        columns = EXPORT_COLUMNS[Role.PRIVACY]
    hidden = customer_fields_hidden_from(user)
    return [column for column in columns if column not in hidden]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _export_rows(customers: QuerySet[Customer], columns: list[str]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    plain = [c for c in columns if c not in ("account", "owner", "tags")]
    values = customers.values_list(
        *plain,
        "account__name" if "account" in columns else "id",
        "owner__username" if "owner" in columns else "id",
    )
    tags_by_customer: dict[int, str] = {}
    batch: list[tuple] = []

    def flush(rows: list[tuple]) -> Iterator[str]:
        if "tags" in columns:
            ids = [r[0] for r in rows]
            tags_by_customer.clear()
            through = Customer.tags.through.objects.filter(customer_id__in=ids).values_list(
                "customer_id", "tag__name"
            )
            for cid, name in through.order_by("tag__name"):
                tags_by_customer[cid] = (
                    f"{tags_by_customer[cid]};{name}" if cid in tags_by_customer else name
                )
        for row in rows:
            record = dict(zip(plain, row[: len(plain)], strict=True))
            record["account"], record["owner"] = row[len(plain)], row[len(plain) + 1]
            record["tags"] = tags_by_customer.get(row[0], "")
            yield writer.writerow([spreadsheet_safe(record[c]) for c in columns])

    for row in values.iterator(chunk_size=2000):
        batch.append(row)
        if len(batch) == 2000:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


@staff_required
def customer_export(request: HttpRequest) -> StreamingHttpResponse:
    """The current filtered list as CSV, streamed row by row so a large export never sits in memory."""
    form = CustomerFilterForm(request.GET or None)
    customers = (
        customers_filtered(request, form) if request.GET else customers_visible_to(request.user)
    )
    sort = (form.cleaned_data.get("sort") if request.GET else None) or "name"
    customers = customers.order_by(*CUSTOMER_ORDERS[sort].order_by())
    columns = export_columns_for(request.user)
    access_record(
        user=request.user,
        action="export",
        object_kind="customer_list",
        details={
            "filters": sorted(k for k, v in request.GET.items() if v),
            "columns": len(columns),
        },
    )
    response = StreamingHttpResponse(
        _export_rows(customers, columns), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="customers-{stamp}.csv"'
    return response
