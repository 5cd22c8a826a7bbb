"""Pages for privacy officers (and admins): requests, exports, audit log, retention, Art. 30,
consent wordings and bulk consent changes. Plus the consent form on the customer page."""

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crm.confirm import Confirmation, confirmation_given, confirmation_page
from crm.labels import audit_record_refs
from crm.roles import Role, user_has_role
from customers.selectors import customers_visible_to
from customers.views.detail import customer_detail
from privacy.audit import audit_record
from privacy.data_requests import (
    TRANSITIONS,
    RequestError,
    data_request_create,
    data_request_extend,
    data_request_match,
    data_request_transition,
    erasure_confirmation_values,
)
from privacy.exports import (
    data_export_downloaded,
    data_export_from_token,
    data_export_request,
    data_export_url,
)
from privacy.forms import (
    AuditSearchForm,
    BulkConsentForm,
    ConsentRecordForm,
    DataRequestForm,
    ExtendForm,
    MatchForm,
    TransitionForm,
    WordingForm,
)
from privacy.links import preference_url
from privacy.models import (
    BulkConsentJob,
    ConsentStatus,
    ConsentWording,
    DataSubjectRequest,
    RequestStatus,
)
from privacy.panels import user_records_consent
from privacy.registry import record_names
from privacy.retention import retention_run
from privacy.selectors import audit_entries_search, dsr_counts, dsr_queue, records_of_processing
from privacy.services import consent_bulk_job_create, consent_bulk_preview, consent_record

PAGE_SIZE = 50


def privacy_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Privacy officers and superusers only."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_has_role(request.user, Role.PRIVACY):
            raise PermissionDenied("Only privacy officers may open this page.")
        return view(request, *args, **kwargs)

    return wrapped


def _form_error_messages(request: HttpRequest, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label or field if field in form.fields else "form"
        for error in errors:
            messages.error(request, f"{str(label).capitalize().replace('_', ' ')}: {error}")


@privacy_required
def request_queue(request: HttpRequest) -> HttpResponse:
    show_closed = request.GET.get("closed") == "1"
    page = Paginator(dsr_queue(include_closed=show_closed), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "privacy/request_queue.html",
        {
            "page": page,
            "counts": dsr_counts(),
            "show_closed": show_closed,
            "form": DataRequestForm(),
        },
    )


@privacy_required
def request_create(request: HttpRequest) -> HttpResponse:
    form = DataRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        customer = None
        if data["customer_id"]:
            customer = customers_visible_to(request.user).filter(pk=data["customer_id"]).first()
            if customer is None:
                form.add_error("customer_id", "No such customer: choose one from the list.")
        if not form.errors:
            try:
                dsr = data_request_create(
                    type=data["type"],
                    law=data["law"],
                    customer=customer,
                    email=data["email"] or "",
                    received_on=data["received_on"],
                    details=data["details"],
                    actor=request.user,
                )
            except RequestError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.problem)
            else:
                messages.success(
                    request, f"Request {dsr.pk} recorded; due {dsr.deadline:%d %b %Y}."
                )
                return redirect("privacy:request_detail", dsr.pk)
    return render(
        request, "privacy/request_form.html", {"form": form}, status=400 if form.errors else 200
    )


@privacy_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dsr = get_object_or_404(
        DataSubjectRequest.objects.select_related("customer", "handled_by"), pk=pk
    )
    return _detail_page(request, dsr)


def _detail_page(
    request: HttpRequest, dsr: DataSubjectRequest, *, status: int = 200, **typed
) -> HttpResponse:
    """The request's page; after an action that failed, with what was typed in its form
    (`typed`: the bound form by its name) and status 400."""
    exports = [
        {"export": e, "url": data_export_url(export=e) if e.status == "done" else ""}
        for e in dsr.exports.order_by("-created_at")
    ]
    history = audit_entries_search(object_kind="data_request", object_id=dsr.pk)[:50]
    forms = {
        "transition_form": TransitionForm(),
        "extend_form": ExtendForm(),
        "match_form": MatchForm(),
    }
    forms.update(typed)
    # Nothing is preselected: the officer picks where the request goes.
    forms["transition_form"].fields["status"].choices = [("", "Choose…")] + [
        (s, RequestStatus(s).label) for s in sorted(TRANSITIONS[dsr.status])
    ]
    return render(
        request,
        "privacy/request_detail.html",
        {
            "dsr": dsr,
            "exports": exports,
            "history": history,
            "next_statuses": [(s, RequestStatus(s).label) for s in sorted(TRANSITIONS[dsr.status])],
            **forms,
        },
        status=status,
    )


@privacy_required
@require_POST
def request_transition(request: HttpRequest, pk: int) -> HttpResponse:
    dsr = get_object_or_404(DataSubjectRequest.objects.select_related("customer"), pk=pk)
    form = TransitionForm(request.POST)
    if not form.is_valid():
        _form_error_messages(request, form)
        return _detail_page(request, dsr, status=400, transition_form=form)
    confirmation = _transition_confirmation(dsr, form.cleaned_data)
    if confirmation is not None and not confirmation_given(
        request, typed_values=confirmation.typed_values
    ):
        return confirmation_page(request, confirmation)
    try:
        dsr = data_request_transition(
            request=dsr,
            status=form.cleaned_data["status"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )
    except RequestError as exc:
        messages.error(request, f"{exc.field.replace('_', ' ').capitalize()}: {exc.problem}")
        return _detail_page(request, dsr, status=400, transition_form=form)
    messages.success(request, f"Request {dsr.pk} is now {dsr.get_status_display().lower()}.")
    return redirect("privacy:request_detail", pk)


def _transition_confirmation(dsr: DataSubjectRequest, data: dict) -> Confirmation | None:
    """Closing a request cannot be undone; completing an erasure erases the person at once, so
    the officer types the customer's name or email first."""
    status = data["status"]
    if status not in (RequestStatus.COMPLETED, RequestStatus.REJECTED):
        return None
    if status == RequestStatus.REJECTED and not data["reason"].strip():
        return None  # refused with its reason by the service, before anyone is asked
    customer = dsr.customer
    facts = [
        ("Request", f"{dsr.get_type_display()} request {dsr.pk} ({dsr.get_law_display()})"),
        ("Customer", str(customer) if customer else f"Unmatched: {dsr.email}"),
        ("New status", RequestStatus(status).label),
    ]
    if status == RequestStatus.REJECTED:
        facts.append(("Reason", data["reason"] or "—"))
    confirmation = Confirmation(
        title=f"Complete request {dsr.pk}?"
        if status == RequestStatus.COMPLETED
        else f"Reject request {dsr.pk}?",
        action_label=f"Mark as {RequestStatus(status).label.lower()}",
        facts=facts,
        warning="A closed request cannot be reopened.",
        cancel_url=reverse("privacy:request_detail", args=[dsr.pk]),
        danger=True,
    )
    if status == RequestStatus.COMPLETED and dsr.type == "erasure" and customer is not None:
        confirmation.title = f"Erase {str(customer)} everywhere?"
        confirmation.action_label = "Erase this customer and complete the request"
        confirmation.warning = (
            "Completing an erasure request deletes or anonymises everything about this customer "
            "in every part of the product, at once. It cannot be undone."
        )
        confirmation.typed_values = erasure_confirmation_values(customer)
        confirmation.typed_label = "To confirm, type the customer's name or email"
    return confirmation


@privacy_required
@require_POST
def request_extend(request: HttpRequest, pk: int) -> HttpResponse:
    dsr = get_object_or_404(DataSubjectRequest, pk=pk)
    form = ExtendForm(request.POST)
    if not form.is_valid():
        _form_error_messages(request, form)
        return _detail_page(request, dsr, status=400, extend_form=form)
    try:
        dsr = data_request_extend(
            request=dsr, reason=form.cleaned_data["reason"], actor=request.user
        )
    except RequestError as exc:
        messages.error(request, f"{exc.field.replace('_', ' ').capitalize()}: {exc.problem}")
        return _detail_page(request, dsr, status=400, extend_form=form)
    messages.success(request, f"Deadline extended to {dsr.deadline:%d %b %Y}.")
    return redirect("privacy:request_detail", pk)


@privacy_required
@require_POST
def request_match(request: HttpRequest, pk: int) -> HttpResponse:
    dsr = get_object_or_404(DataSubjectRequest, pk=pk)
    form = MatchForm(request.POST)
    if not form.is_valid():
        _form_error_messages(request, form)
        return _detail_page(request, dsr, status=400, match_form=form)
    customer = (
        customers_visible_to(request.user).filter(pk=form.cleaned_data["customer_id"]).first()
    )
    if customer is None:
        messages.error(request, "Customer: no such customer, choose one from the list.")
        return _detail_page(request, dsr, status=400, match_form=form)
    try:
        data_request_match(request=dsr, customer=customer, actor=request.user)
    except RequestError as exc:
        messages.error(request, f"{exc.field.capitalize()}: {exc.problem}")
        return _detail_page(request, dsr, status=400, match_form=form)
    messages.success(request, f"Request matched to {customer} (customer {customer.pk}).")
    return redirect("privacy:request_detail", pk)


@privacy_required
@require_POST
def request_export(request: HttpRequest, pk: int) -> HttpResponse:
    dsr = get_object_or_404(DataSubjectRequest.objects.select_related("customer"), pk=pk)
    if dsr.customer is None:
        messages.error(request, "Customer: match the request to a customer before exporting.")
    else:
        data_export_request(customer=dsr.customer, actor=request.user, request=dsr)
        messages.success(request, "The export is being built; its download link appears below.")
    return redirect("privacy:request_detail", pk)


@privacy_required
def export_download(request: HttpRequest, token: str) -> HttpResponse:
    try:
        export = data_export_from_token(token)
    except signing.SignatureExpired:
        return render(
            request,
            "privacy/link_error.html",
            {"message": "This download link has expired. Open the request and use its new link."},
            status=410,
        )
    except signing.BadSignature:
        return render(
            request,
            "privacy/link_error.html",
            {"message": "This download link is not valid."},
            status=400,
        )
    if export is None or not export.file:
        return render(
            request,
            "privacy/link_error.html",
            {"message": "This export no longer exists."},
            status=404,
        )
    data_export_downloaded(export=export, actor=request.user)
    return FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=f"personal-data-{export.customer_id}-{export.pk}.zip",
    )


@privacy_required
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditSearchForm(request.GET or None)
    entries = audit_entries_search()
    if form.is_valid():
        data = form.cleaned_data
        actor_id = None
        if data["actor"]:
            actor_id = (
                get_user_model()
                .objects.filter(username=data["actor"])
                .values_list("pk", flat=True)
                .first()
                or -1
            )
        entries = audit_entries_search(
            actor_id=actor_id,
            action=data["action"],
            object_kind=data["object_kind"],
            object_id=data["object_id"],
            since=data["since"],
            until=data["until"],
        )
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    # Records by name, not number: one statement per kind of record on the page.
    names = record_names(audit_record_refs(page.object_list))
    for entry in page.object_list:
        entry.record_name = names.get(entry.object_kind, {}).get(entry.object_id, "")
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "privacy/audit_log.html",
        {"form": form, "page": page, "query": query.urlencode(), "names": names},
    )


@privacy_required
def retention_report(request: HttpRequest) -> HttpResponse:
    report = retention_run(dry_run=True)
    return render(request, "privacy/retention.html", {"report": report})


@privacy_required
def processing_records(request: HttpRequest) -> HttpResponse:
    return render(request, "privacy/processing.html", {"records": records_of_processing()})


@privacy_required
def wordings(request: HttpRequest) -> HttpResponse:
    form = WordingForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            wording = form.save()
        except IntegrityError:
            form.add_error("version", "This purpose already has a wording with this version.")
        else:
            audit_record(
                actor=request.user,
                action="change",
                object_kind="consent_wording",
                object_id=wording.pk,
            )
            messages.success(request, f"Wording {wording} saved.")
            return redirect("privacy:wordings")
    return render(
        request,
        "privacy/wordings.html",
        {"form": form, "wordings": ConsentWording.objects.select_related("purpose")},
        status=400 if form.errors else 200,
    )


@privacy_required
def bulk_consent(request: HttpRequest) -> HttpResponse:
    form = BulkConsentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        audience, audience_id = "", None
        if data["audience"]:
            audience, _, raw_id = data["audience"].partition(":")
            audience_id = int(raw_id)
        try:
            preview = consent_bulk_preview(
                purpose=data["purpose"].code,
                state=data["state"],
                csv_text=data["file"],
                audience=audience,
                audience_id=audience_id,
            )
            if not confirmation_given(request):
                return confirmation_page(
                    request,
                    _bulk_confirmation(data, preview),
                    carry={"identifiers": "\n".join(preview["identifiers"])},
                )
            job = consent_bulk_job_create(
                purpose=data["purpose"].code,
                state=data["state"],
                evidence=data["evidence"],
                actor=request.user,
                csv_text=data["file"],
                audience=audience,
                audience_id=audience_id,
            )
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            form.add_error(field if field in form.fields else None, message or str(exc))
        else:
            messages.success(request, f"Bulk change {job.pk} queued.")
            return redirect("privacy:bulk_consent")
    jobs = BulkConsentJob.objects.select_related("purpose", "created_by")[:20]
    return render(
        request,
        "privacy/bulk_consent.html",
        {"form": form, "jobs": jobs},
        status=400 if form.errors else 200,
    )


def _bulk_confirmation(data: dict, preview: dict) -> Confirmation:
    state = ConsentStatus(data["state"]).label.lower()
    return Confirmation(
        title=f"Change {preview['will_change']:,} customers to {state}?",
        action_label=f"Record {state} for {preview['will_change']:,} customers",
        facts=[
            ("Purpose", data["purpose"].name),
            ("New state", ConsentStatus(data["state"]).label),
            ("Customers found", f"{preview['matched']:,}"),
            ("Customers whose consent changes", f"{preview['will_change']:,}"),
            ("Already in that state", f"{preview['matched'] - preview['will_change']:,}"),
            ("Lines that match no customer", f"{preview['unmatched']:,}"),
            ("Evidence", data["evidence"]),
        ],
        warning="Each change is appended to the consent ledger, which cannot be edited.",
        cancel_url=reverse("privacy:bulk_consent"),
        danger=data["state"] == ConsentStatus.WITHDRAWN,
    )


@login_required
@require_POST
def customer_consent_record(request: HttpRequest, pk: int) -> HttpResponse:
    """The consent form of the customer page: staff record consent with its evidence."""
    if not user_records_consent(request.user):
        raise PermissionDenied("Only privacy officers and sales staff record consent.")
    customer = get_object_or_404(customers_visible_to(request.user), pk=pk)
    form = ConsentRecordForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        consent_record(
            customer=customer,
            purpose=data["purpose"].code,
            state=data["state"],
            source=data["source"],
            actor=request.user,
            wording=data["wording"],
            evidence=data["evidence"],
            recorded_at=data["recorded_at"],
            ip_address=None,
        )
        messages.success(request, f"{data['purpose'].name}: {data['state']} recorded.")
        return redirect(reverse("customers:customer_detail", args=[customer.pk]) + "#consent")
    # The customer page again, with the form as filled in and its errors, instead of a redirect
    # that would throw away what was typed.
    _form_error_messages(request, form)
    request.consent_form = form
    response = customer_detail(request, customer.pk)
    response.status_code = 400
    return response


@privacy_required
def customer_preference_link(request: HttpRequest, pk: int) -> HttpResponse:
    """Show the preference-centre link of a customer so an officer can send it."""
    customer = get_object_or_404(customers_visible_to(request.user), pk=pk)
    audit_record(
        actor=request.user, action="view", object_kind="preference_link", object_id=customer.pk
    )
    return render(
        request,
        "privacy/preference_link.html",
        {
            "customer": customer,
            "link": request.build_absolute_uri(preference_url(customer_id=customer.pk)),
        },
    )
