"""Public pages for customers, without a login: the signup page, and the preference centre and
the double opt-in confirmation, both opened through signed links. A broken or expired link shows a clear page,
never an error. A Sec-GPC: 1 header from an identified customer is honoured as a data-sale opt-out."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crm.client_address import client_address
from customers.models import Customer
from privacy.data_requests import data_request_create
from privacy.erasure import ERASED_SOURCE
from privacy.forms import PreferenceForm, PreferenceRequestForm, SignupForm
from privacy.links import LinkError, confirmation_token_pending_id, preference_token_customer_id
from privacy.models import Law, PendingConsent, RequestChannel, RequestType
from privacy.services import (
    consent_confirm,
    consent_gpc_honour,
    consent_preferences_update,
    consent_state_for,
    consent_unsubscribe_all,
)
from privacy.signup import signup_allowed, signup_purposes, signup_subscribe

CCPA_COUNTRIES = {"US"}


def _link_error(request: HttpRequest, error: LinkError) -> HttpResponse:
    return render(request, "privacy/link_error.html", {"message": error.message}, status=400)


def _customer_from_token(token: str) -> Customer | None:
    customer_id = preference_token_customer_id(token)
    return Customer.objects.filter(pk=customer_id).exclude(source=ERASED_SOURCE).first()


def _honour_gpc(request: HttpRequest, customer: Customer) -> bool:
    if request.headers.get("Sec-GPC", "").strip() == "1":
        consent_gpc_honour(customer=customer, ip_address=client_address(request))
        return True
    return False


@require_http_methods(["GET", "POST"])
def preference_centre(request: HttpRequest, token: str) -> HttpResponse:
    try:
        customer = _customer_from_token(token)
    except LinkError as error:
        return _link_error(request, error)
    if customer is None:
        return render(request, "privacy/preference_gone.html", status=404)
    gpc = _honour_gpc(request, customer)
    states = consent_state_for(customer=customer)
    form = PreferenceForm(request.POST or None, states=states)
    if request.method == "POST" and form.is_valid():
        chosen = {code: value for code, value in form.cleaned_data.items() if value}
        changes = consent_preferences_update(
            customer=customer, states=chosen, ip_address=client_address(request)
        )
        messages.success(request, f"Your choices are saved ({len(changes)} changed).")
        return redirect("privacy:preference_centre", token)
    pending = set(
        customer.pending_consents.filter(record__isnull=True).values_list("purpose_id", flat=True)
    )
    open_requests = customer.data_requests.filter(
        status__in=("received", "verifying", "in_progress")
    )
    return render(
        request,
        "privacy/preference_centre.html",
        {
            "customer": customer,
            "token": token,
            "form": form,
            "pending": pending,
            "gpc": gpc,
            "request_form": PreferenceRequestForm(),
            "open_requests": open_requests,
        },
        status=400 if form.errors else 200,
    )


@require_POST
def preference_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        customer = _customer_from_token(token)
    except LinkError as error:
        return _link_error(request, error)
    if customer is None:
        return render(request, "privacy/preference_gone.html", status=404)
    consent_unsubscribe_all(customer=customer, ip_address=client_address(request))
    messages.success(
        request, "You are unsubscribed from everything. We will not contact you again."
    )
    return redirect("privacy:preference_centre", token)


@require_POST
def preference_request(request: HttpRequest, token: str) -> HttpResponse:
    try:
        customer = _customer_from_token(token)
    except LinkError as error:
        return _link_error(request, error)
    if customer is None:
        return render(request, "privacy/preference_gone.html", status=404)
    form = PreferenceRequestForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field.capitalize()}: {' '.join(errors)}")
        return redirect("privacy:preference_centre", token)
    kind = form.cleaned_data["type"]
    if customer.data_requests.filter(
        type=kind, status__in=("received", "verifying", "in_progress")
    ).exists():
        messages.info(request, "We already have this request from you and are working on it.")
        return redirect("privacy:preference_centre", token)
    law = Law.CCPA if customer.country in CCPA_COUNTRIES else Law.GDPR
    # The signed link was sent to the customer's own address, so the request is verified.
    dsr = data_request_create(
        type=kind,
        law=law,
        customer=customer,
        details=form.cleaned_data["details"],
        channel=RequestChannel.PREFERENCE_CENTRE,
    )
    label = "a copy of your data" if kind == RequestType.ACCESS else "the erasure of your data"
    messages.success(
        request, f"We received your request for {label}. We answer by {dsr.deadline:%d %B %Y}."
    )
    return redirect("privacy:preference_centre", token)


@require_http_methods(["GET", "POST"])
def consent_confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and POST confirms: mail scanners that open links must not confirm."""
    try:
        pending_id = confirmation_token_pending_id(token)
    except LinkError as error:
        return _link_error(request, error)
    pending = (
        PendingConsent.objects.select_related("customer", "purpose").filter(pk=pending_id).first()
    )
    if pending is None or pending.customer.source == ERASED_SOURCE:
        return render(
            request,
            "privacy/link_error.html",
            {"message": "This confirmation is no longer pending."},
            status=404,
        )
    _honour_gpc(request, pending.customer)
    if request.method == "POST":
        consent_confirm(pending=pending, ip_address=client_address(request))
        pending.refresh_from_db()
    return render(request, "privacy/confirm.html", {"pending": pending, "token": token})


def _site_url(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Sign up for the purposes offered; the answer never tells whether the address was known."""
    offered = signup_purposes()
    form = SignupForm(request.POST or None, offered=offered)
    if request.method == "POST":
        if not signup_allowed(client=client_address(request)):
            return render(request, "privacy/signup_throttled.html", status=429)
        if form.is_valid():
            if not form.is_bot:
                signup_subscribe(
                    email=form.cleaned_data["email"],
                    first_name=form.cleaned_data["first_name"],
                    last_name=form.cleaned_data["last_name"],
                    purposes=form.chosen(),
                    ip_address=client_address(request),
                    site_url=_site_url(request),
                    gpc=request.headers.get("Sec-GPC", "").strip() == "1",
                )
            return redirect("privacy:signup_done")
    return render(
        request,
        "privacy/signup.html",
        {"form": form, "offered": offered},
        status=400 if form.errors else 200,
    )


def signup_done(request: HttpRequest) -> HttpResponse:
    return render(
        request, "privacy/signup_done.html", {"double_opt_in": settings.PRIVACY_DOUBLE_OPT_IN}
    )
