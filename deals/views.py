"""The deal pages: list, board, detail with its timeline, form, moves, activities, forecast.
Every view reads through deals.selectors and writes through deals.services."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from crm import bulk_views, list_views
from crm.bulk import bulk_jobs_visible_to
from crm.text import text_problem
from customers.selectors import accounts_visible_to, customers_visible_to
from deals import services, win_model
from deals.forms import (
    ACTIVITY_IDS,
    DEAL_SORTS,
    ActivityForm,
    DealFilterForm,
    DealForm,
    DealMoveForm,
    ForecastFilterForm,
    TargetForm,
)
from deals.models import Activity, Deal, StageChange, WinModel
from deals.selectors import (
    WEIGHTED,
    activities_visible_to,
    board_columns,
    deals_visible_to,
    deals_with_figures,
    default_pipeline,
    forecast,
    forecast_totals_by_month,
    month_start,
    months_from,
    user_edits_deals,
    user_reads_deals,
)
from deals.win_model import deal_win_prediction, win_model_active

PAGE_SIZE = 50


def readers_only(view):
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_reads_deals(request.user):
            raise PermissionDenied("Deals are for sales and marketing staff.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def editors_only(view):
    @login_required
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_edits_deals(request.user):
            raise PermissionDenied("Only sales staff and admins change deals.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _service_errors_to_form(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error)


def _query_without(request: HttpRequest, *names: str) -> str:
    return urlencode([(k, v) for k, v in request.GET.items() if k not in names and "\x00" not in v])


def _back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    """Back to the page the form was on (`next`, a path of this site), else to `fallback`."""
    target = request.POST.get("next", "")
    if (
        target.startswith("/")
        and text_problem(target) is None
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return HttpResponseRedirect(target)
    return HttpResponseRedirect(fallback)


# The list ---------------------------------------------------------------------------------------


@readers_only
def deal_list(request: HttpRequest) -> HttpResponse:
    """Deals the user may see: filter, sort by clicking a header, the total count and amounts."""
    form = DealFilterForm(request.GET or None)
    deals = deals_visible_to(request.user)
    sort = "-created"
    if form.is_bound and form.is_valid():
        deals = form.apply(deals)
        sort = form.cleaned_data["sort"]
    elif form.is_bound:
        deals = deals.none()
    # COUNT(*): every column the figures read is in a covering index (deal_*_figures_idx).
    totals = deals.aggregate(count=Count("*"), total=Sum("amount"), weighted=Sum(WEIGHTED))
    key = sort.lstrip("-")
    order = DEAL_SORTS[key][1]
    if sort.startswith("-"):
        order = tuple(f"-{f}" for f in order)
    rows = deals_with_figures(deals).select_related(
        "stage", "pipeline", "owner", "account", "customer"
    )
    paginator = Paginator(rows.order_by(*order), PAGE_SIZE)
    paginator.count = totals["count"]  # counted with the sums above: no second count
    page = paginator.get_page(request.GET.get("page"))
    base = _query_without(request, "sort", "page")
    headers = []
    for name, (label, _) in DEAL_SORTS.items():
        next_sort = f"-{name}" if sort == name else name
        headers.append(
            {
                "label": label,
                "url": "?" + "&".join(x for x in (base, f"sort={next_sort}") if x),
                "active": key == name,
                "descending": sort == f"-{name}",
                "key": name,
            }
        )
    context = {
        "form": form,
        "page": page,
        "totals": totals,
        "headers": {h["key"]: h for h in headers},
        "page_query": _query_without(request, "page"),
        "can_edit": user_edits_deals(request.user),
        "bulk_form": bulk_views.bulk_form_for(
            request, "deals", query=_query_without(request, "page", "sort")
        ),
        "saved_views": list_views.saved_views_for(request, "deals"),
        "view_query": _query_without(request, "page"),
    }
    return render(request, "deals/deal_list.html", context)


@readers_only
def deal_bulk(request: HttpRequest) -> HttpResponse:
    """The list's bulk bar: the shared bulk actions (crm/bulk_views.py) on the deals."""
    return bulk_views.bulk_action(request, "deals")


@readers_only
def deal_bulk_job(request: HttpRequest, pk: int) -> HttpResponse:
    """Where a bulk action on deals stands (the shared bulk job page)."""
    get_object_or_404(bulk_jobs_visible_to(request.user).filter(list_name="deals"), pk=pk)
    return bulk_views.bulk_job(request, pk)


# The board --------------------------------------------------------------------------------------


@readers_only
def deal_board(request: HttpRequest) -> HttpResponse:
    """One column per stage of a pipeline, with totals and weighted totals; cards move by drag
    and drop (static/deals/board.js) or with the select on each card."""
    form = DealFilterForm(request.GET or None)
    deals = deals_visible_to(request.user)
    pipeline = None
    if form.is_bound and form.is_valid():
        deals = form.apply(deals)
        pipeline = form.cleaned_data.get("pipeline")
    elif form.is_bound:
        deals = deals.none()
    pipeline = pipeline or default_pipeline()
    columns = board_columns(deals=deals, pipeline=pipeline) if pipeline else []
    stages = [c.stage for c in columns]
    now = timezone.now()
    # Hundreds of cards: their links come from one reverse each, and a column's stage options
    # (the same for every card in it) are built once, escaped by format_html.
    detail_url = reverse("deals:detail", args=[0])[:-2]
    move_url = reverse("deals:move", args=[0])[: -len("0/move/")]
    for column in columns:
        column.stage_options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((s.pk, " selected" if s.pk == column.stage.pk else "", s.name) for s in stages),
        )
        for deal in column.deals:
            deal.days_in_stage = max(0, (now - deal.stage_entered_at).days)
            deal.detail_url = f"{detail_url}{deal.pk}/"
            deal.move_url = f"{move_url}{deal.pk}/move/"
    context = {
        "form": form,
        "pipeline": pipeline,
        "columns": columns,
        "stages": stages,
        "total": sum((c.total for c in columns), 0),
        "weighted": sum((c.weighted for c in columns), 0),
        "can_edit": user_edits_deals(request.user),
        "back": request.get_full_path(),
    }
    return render(request, "deals/board.html", context)


# One deal ---------------------------------------------------------------------------------------


def _timeline(deal: Deal, activities: list[Activity]) -> list[dict]:
    entries = []
    changes = (
        StageChange.objects.filter(deal=deal)
        .select_related("from_stage", "to_stage", "changed_by")
        .order_by("-changed_at", "-id")[:100]
    )
    for c in changes:
        who = c.changed_by.get_username() if c.changed_by else "someone"
        title = (
            f"Moved from {c.from_stage.name} to {c.to_stage.name}"
            if c.from_stage_id
            else f"Opened in {c.to_stage.name}"
        )
        entries.append({"at": c.changed_at, "kind": "stage", "title": title, "who": who})
    for a in activities:
        who = a.author.get_username() if a.author else "someone"
        entries.append(
            {
                "at": a.occurred_at,
                "kind": a.kind,
                "title": f"{a.get_kind_display()}: {a.subject}",
                "detail": a.body,
                "who": who,
            }
        )
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries


@readers_only
def deal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_object_or_404(
        deals_with_figures(deals_visible_to(request.user)).select_related(
            "pipeline", "stage", "owner", "account", "customer", "purchase"
        ),
        pk=pk,
    )
    activities = list(
        Activity.objects.filter(deal=deal)
        .select_related("author", "assignee")
        .order_by("-occurred_at", "-id")[:100]
    )
    context = {
        "deal": deal,
        "lines": list(deal.lines.select_related("product")),
        "timeline": _timeline(deal, activities),
        "follow_ups": [a for a in activities if a.due_date and not a.done],
        "move_form": DealMoveForm(deal=deal),
        "activity_form": ActivityForm(auto_id=ACTIVITY_IDS),
        "can_edit": user_edits_deals(request.user),
        "days_in_stage": max(0, (timezone.now() - deal.stage_entered_at).days),
        "prediction": deal_win_prediction(deal),
        "today": timezone.localdate(),
        "customer_visible": deal.customer_id
        and customers_visible_to(request.user).filter(pk=deal.customer_id).exists(),
        "account_visible": deal.account_id
        and accounts_visible_to(request.user).filter(pk=deal.account_id).exists(),
    }
    return render(request, "deals/deal_detail.html", context)


def _deal_form(request: HttpRequest, deal: Deal | None) -> DealForm:
    initial = {}
    if deal is None:
        initial = {"owner": request.user.pk, "currency": "EUR"}
        for name in ("account", "customer"):
            value = request.GET.get(name, "")
            if value.isdigit() and len(value) < 12:
                initial[name] = int(value)
    return DealForm(
        request.POST or None,
        instance=deal,
        actor=request.user,
        accounts=accounts_visible_to(request.user),
        customers=customers_visible_to(request.user),
        initial=initial,
    )


@editors_only
def deal_create(request: HttpRequest) -> HttpResponse:
    form = _deal_form(request, None)
    if request.method == "POST" and form.is_valid():
        try:
            deal = services.deal_create(actor=request.user, **form.service_fields())
        except ValidationError as error:
            _service_errors_to_form(form, error)
        else:
            messages.success(request, f"Deal {deal} created.")
            return redirect("deals:detail", pk=deal.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "deals/deal_form.html", {"form": form, "deal": None}, status=status)


@editors_only
def deal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_object_or_404(deals_visible_to(request.user), pk=pk)
    form = _deal_form(request, deal)
    if request.method == "POST" and form.is_valid():
        try:
            services.deal_update(deal=deal, actor=request.user, **form.service_fields())
        except ValidationError as error:
            _service_errors_to_form(form, error)
        else:
            messages.success(request, "Deal saved.")
            return redirect("deals:detail", pk=deal.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "deals/deal_form.html", {"form": form, "deal": deal}, status=status)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@require_POST
@editors_only
def deal_move(request: HttpRequest, pk: int) -> HttpResponse:
    """Move a deal to another stage: from the board (drag and drop posts here with fetch and
    asks for JSON; the select on each card is a plain form), or from the deal page."""
    deal = get_object_or_404(deals_visible_to(request.user).select_related("pipeline"), pk=pk)
    form = DealMoveForm(request.POST, deal=deal)
    if form.is_valid():
        try:
            deal = services.deal_move(
                deal=deal,
                stage=form.cleaned_data["stage"],
                lost_reason=form.cleaned_data["lost_reason"],
                actor=request.user,
            )
        except ValidationError as error:
            _service_errors_to_form(form, error)
    if _wants_json(request):
        if form.errors:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        return JsonResponse({"id": deal.pk, "stage": deal.stage_id})
    if form.errors:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    else:
        messages.success(request, f"{deal} is now in {deal.stage.name}.")
    return _back(request, reverse("deals:detail", args=[deal.pk]))


# Activities -------------------------------------------------------------------------------------


@require_POST
@editors_only
def activity_create(request: HttpRequest) -> HttpResponse:
    """Log an activity on a deal, an account or a customer (the one named in the form)."""
    form = ActivityForm(request.POST)
    parties = {}
    for name, queryset in (
        ("deal", deals_visible_to(request.user)),
        ("account", accounts_visible_to(request.user)),
        ("customer", customers_visible_to(request.user)),
    ):
        value = request.POST.get(name, "")
        if value:
            if not value.isdigit() or len(value) > 12:
                raise_404 = True
            else:
                parties[name] = queryset.filter(pk=int(value)).first()
                raise_404 = parties[name] is None
            if raise_404:
                messages.error(request, f"No {name} with that number that you may see.")
                return _back(request, reverse("deals:list"))
    if not parties:
        messages.error(request, "An activity is on a deal, an account or a customer.")
        return _back(request, reverse("deals:list"))
    fallback = (
        reverse("deals:detail", args=[parties["deal"].pk])
        if "deal" in parties
        else reverse("customers:account_detail", args=[parties["account"].pk])
        if "account" in parties
        else reverse("customers:customer_detail", args=[parties["customer"].pk])
    )
    if form.is_valid():
        try:
            activity = services.activity_create(author=request.user, **parties, **form.cleaned_data)
        except ValidationError as error:
            _service_errors_to_form(form, error)
        else:
            messages.success(request, f"{activity.get_kind_display()} logged.")
            return _back(request, fallback)
    for field, errors in form.errors.items():
        for error in errors:
            messages.error(
                request, f"{field.replace('_', ' ')}: {error}" if field != "__all__" else error
            )
    return _back(request, fallback)


@require_POST
@editors_only
def activity_done(request: HttpRequest, pk: int) -> HttpResponse:
    activity = get_object_or_404(activities_visible_to(request.user), pk=pk)
    try:
        services.activity_complete(activity=activity, actor=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Follow-up done.")
    return _back(request, reverse("dashboard"))


# Forecast ---------------------------------------------------------------------------------------


@readers_only
def deal_forecast(request: HttpRequest) -> HttpResponse:
    """Per owner and month: the weighted pipeline, the won amount and the target, with a chart."""
    form = ForecastFilterForm(request.GET or None)
    first, count, currency, owner = month_start(timezone.localdate()), 6, "EUR", None
    if form.is_bound and form.is_valid():
        first = form.cleaned_data["start"] or first
        count = form.cleaned_data["months"] or count
        currency = form.cleaned_data["currency"]
        owner = form.cleaned_data["owner"]
    months = months_from(first, count)
    rows = forecast(
        deals=deals_visible_to(request.user),
        months=months,
        currency=currency,
        owner_ids=[owner.pk] if owner else None,
    )
    by_owner: dict[str, dict] = {}
    for row in rows:
        entry = by_owner.setdefault(
            row.owner_name, {"name": row.owner_name, "cells": {m: None for m in months}}
        )
        entry["cells"][row.month] = row
    table = [
        {"name": e["name"], "cells": [e["cells"][m] for m in months]}
        for e in sorted(by_owner.values(), key=lambda e: e["name"])
    ]
    chart = forecast_totals_by_month(rows, months)
    context = {
        "form": form,
        "months": months,
        "table": table,
        "chart": chart,
        "currency": currency,
        "totals": {
            "weighted": sum(chart["weighted"]),
            "predicted": sum(chart["predicted"]),
            "won": sum(chart["won"]),
            "target": sum(chart["target"]),
        },
        "target_form": TargetForm(initial={"currency": currency, "month": first.strftime("%Y-%m")})
        if request.user.is_superuser
        else None,
        "win_model": win_model_active(),
        "win_training": WinModel.objects.defer("fitted").order_by("-created_at", "-id").first(),
        "can_train": request.user.is_superuser,
    }
    return render(request, "deals/forecast.html", context)


@require_POST
@readers_only
def win_model_train(request: HttpRequest) -> HttpResponse:
    """Train the win-probability model on the recorded history (administrators)."""
    try:
        win_model.win_model_train(actor=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Training queued: the forecast uses the model once it is done.")
    return redirect("deals:forecast")


@require_POST
@login_required
def forecast_target_set(request: HttpRequest) -> HttpResponse:
    if not request.user.is_superuser:
        raise PermissionDenied("Only an administrator sets targets.")
    form = TargetForm(request.POST)
    if form.is_valid():
        try:
            services.forecast_target_set(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _service_errors_to_form(form, error)
        else:
            messages.success(request, "Target saved.")
    for field, errors in form.errors.items():
        for error in errors:
            messages.error(request, f"{field}: {error}")
    return redirect(reverse("deals:forecast"))


# Saved views -------------------------------------------------------------------------------------


@readers_only
def deal_view_save(request: HttpRequest) -> HttpResponse:
    """Save the list's filter and sort under a name (the shared saved-view page)."""
    return list_views.saved_view_save(request, "deals")


@readers_only
def deal_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return list_views.saved_view_delete(request, pk)
