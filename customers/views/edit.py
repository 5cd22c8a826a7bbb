"""Creating and changing customers, accounts and notes; merging duplicates. Every write goes
through customers.services; forms only check input and put errors next to their fields."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crm.confirm import confirmation_given, confirmation_page
from customers.forms import AccountForm, CustomerForm, MergeForm, NoteForm
from customers.models import Note
from customers.selectors import accounts_visible_to, customers_visible_to
from customers.services import (
    account_create,
    account_update,
    customer_create,
    customer_merge,
    customer_update,
    note_complete,
    note_create,
    tags_get_or_create,
)
from customers.views.access import editor_required
from customers.views.detail import notes_context, recent_notes
from customers.views.merge import merge_confirmation


def _service_errors_to_form(form, error: ValidationError) -> None:
    """Errors the service finds (constraints checked in its transaction) go next to their fields."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


@editor_required
def customer_create_view(request: HttpRequest) -> HttpResponse:
    accounts = accounts_visible_to(request.user)
    form = CustomerForm(
        request.POST or None,
        actor=request.user,
        accounts=accounts,
        initial={"owner": request.user.pk},
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer = customer_create(
                actor=request.user,
                tags=tags_get_or_create(names=form.cleaned_data["tags"]),
                **form.service_fields(),
            )
        except ValidationError as error:
            _service_errors_to_form(form, error)
        else:
            messages.success(request, f"Customer {customer} created.")
            return redirect("customers:customer_detail", pk=customer.pk)
    return render(
        request,
        "customers/customer_form.html",
        {"form": form, "customer": None},
        status=_status(form, request),
    )


@editor_required
def customer_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(customers_visible_to(request.user), pk=pk)
    form = CustomerForm(
        request.POST or None,
        instance=customer,
        actor=request.user,
        accounts=accounts_visible_to(request.user),
    )
    if request.method == "POST" and form.is_valid():
        try:
            customer_update(
                customer=customer,
                actor=request.user,
                tags=tags_get_or_create(names=form.cleaned_data["tags"]),
                **form.service_fields(),
            )
        except ValidationError as error:
            customer.refresh_from_db()
            _service_errors_to_form(form, error)
        else:
            messages.success(request, "Changes saved.")
            return redirect("customers:customer_detail", pk=customer.pk)
    return render(
        request,
        "customers/customer_form.html",
        {"form": form, "customer": customer},
        status=_status(form, request),
    )


@editor_required
def account_create_view(request: HttpRequest) -> HttpResponse:
    form = AccountForm(request.POST or None, actor=request.user, initial={"owner": request.user.pk})
    if request.method == "POST" and form.is_valid():
        try:
            account = account_create(
                actor=request.user,
                tags=tags_get_or_create(names=form.cleaned_data["tags"]),
                **form.service_fields(),
            )
        except ValidationError as error:
            _service_errors_to_form(form, error)
        else:
            messages.success(request, f"Account {account} created.")
            return redirect("customers:account_detail", pk=account.pk)
    return render(
        request,
        "customers/account_form.html",
        {"form": form, "account": None},
        status=_status(form, request),
    )


@editor_required
def account_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(accounts_visible_to(request.user), pk=pk)
    form = AccountForm(request.POST or None, instance=account, actor=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            account_update(
                account=account,
                actor=request.user,
                tags=tags_get_or_create(names=form.cleaned_data["tags"]),
                **form.service_fields(),
            )
        except ValidationError as error:
            account.refresh_from_db()
            _service_errors_to_form(form, error)
        else:
            messages.success(request, "Changes saved.")
            return redirect("customers:account_detail", pk=account.pk)
    return render(
        request,
        "customers/account_form.html",
        {"form": form, "account": account},
        status=_status(form, request),
    )


def _status(form, request: HttpRequest) -> int:
    return 400 if request.method == "POST" and form.errors else 200


def _notes_response(
    request: HttpRequest,
    *,
    notes_qs,
    post_url: str,
    form: NoteForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "customers/_notes.html",
        notes_context(request, recent_notes(notes_qs), form=form, post_url=post_url),
        status=status,
    )


def _note_create(request: HttpRequest, *, customer=None, account=None) -> HttpResponse:
    owner = customer or account
    post_url = reverse(
        "customers:customer_note_create" if customer else "customers:account_note_create",
        args=[owner.pk],
    )
    detail_url = reverse(
        "customers:customer_detail" if customer else "customers:account_detail", args=[owner.pk]
    )
    form = NoteForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        note_create(
            author=request.user,
            customer=customer,
            account=account,
            body=data["body"],
            kind=data["kind"],
            due_date=data["due_date"],
        )
        label = "Follow-up" if data["due_date"] else "Note"
        if not request.htmx:
            messages.success(request, f"{label} added.")
            return redirect(detail_url)
        return _notes_response(request, notes_qs=owner.notes, post_url=post_url)
    if not request.htmx:
        messages.error(
            request,
            "The note was not saved: "
            + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
        )
        return redirect(detail_url)
    return _notes_response(request, notes_qs=owner.notes, post_url=post_url, form=form, status=200)


@editor_required
@require_POST
def customer_note_create(request: HttpRequest, pk: int) -> HttpResponse:
    customer = get_object_or_404(customers_visible_to(request.user), pk=pk)
    return _note_create(request, customer=customer)


@editor_required
@require_POST
def account_note_create(request: HttpRequest, pk: int) -> HttpResponse:
    account = get_object_or_404(accounts_visible_to(request.user), pk=pk)
    return _note_create(request, account=account)


@editor_required
@require_POST
def note_complete_view(request: HttpRequest, pk: int) -> HttpResponse:
    note = get_object_or_404(Note.objects.select_related("customer", "account"), pk=pk)
    # The note is reachable only through a customer or account the user may see.
    if note.customer_id:
        owner = get_object_or_404(customers_visible_to(request.user), pk=note.customer_id)
        post_url = reverse("customers:customer_note_create", args=[owner.pk])
        detail_url = reverse("customers:customer_detail", args=[owner.pk])
    else:
        owner = get_object_or_404(accounts_visible_to(request.user), pk=note.account_id)
        post_url = reverse("customers:account_note_create", args=[owner.pk])
        detail_url = reverse("customers:account_detail", args=[owner.pk])
    note_complete(note=note, actor=request.user)
    if request.POST.get("from") == "dashboard":
        messages.success(request, "Follow-up done.")
        return redirect("dashboard")
    if request.htmx:
        return _notes_response(request, notes_qs=owner.notes, post_url=post_url)
    messages.success(request, "Follow-up done.")
    return redirect(detail_url)


@editor_required
def customer_merge_view(request: HttpRequest, pk: int) -> HttpResponse:
    visible = customers_visible_to(request.user)
    target = get_object_or_404(visible, pk=pk)
    form = MergeForm(request.POST or None, target=target, visible=visible)
    if request.method == "POST" and form.is_valid():
        duplicate = form.cleaned_data["duplicate"]
        if not confirmation_given(request):
            return confirmation_page(
                request, merge_confirmation(target=target, duplicate=duplicate, user=request.user)
            )
        try:
            customer_merge(target=target, duplicate=duplicate, actor=request.user)
        except (ValidationError, PermissionDenied) as error:
            form.add_error(
                "duplicate", error.messages if hasattr(error, "messages") else str(error)
            )
        else:
            messages.success(request, f"Customer {duplicate.pk} was merged into this one.")
            return redirect("customers:customer_detail", pk=target.pk)
    return render(
        request,
        "customers/customer_merge.html",
        {"form": form, "customer": target},
        status=_status(form, request),
    )
