"""Pages for marketers: segment list, rule builder, segment page with members and history."""

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from crm.confirm import Confirmation, confirmation_given, confirmation_page
from crm.roles import Role, user_has_role
from customers.forms import staff_choices
from customers.selectors import customer_fields_hidden_from
from privacy.models import Purpose
from segments import rules
from segments.forms import MembersUploadForm, SegmentForm
from segments.models import RefreshRun, Segment
from segments.rule_words import rule_in_words
from segments.rules import RuleInvalid
from segments.selectors import segment_members, segment_overlap, segment_size_history
from segments.services import (
    segment_add_members,
    segment_create,
    segment_delete,
    segment_members_from_csv,
    segment_refresh_after_save,
    segment_refresh_queue,
    segment_remove_members,
    segment_update,
)

SPARK_POINTS = 20


def _require_reader(request: HttpRequest) -> None:
    if not user_has_role(request.user, Role.MARKETING, Role.SALES):
        raise PermissionDenied


def _require_manager(request: HttpRequest) -> None:
    if not user_has_role(request.user, Role.MARKETING):
        raise PermissionDenied


def sparkline_points(sizes: list[int], width: int = 120, height: int = 28) -> str:
    """An SVG polyline's points for a series of sizes (drawn server-side: no script, no style)."""
    if not sizes:
        return ""
    if len(sizes) == 1:
        sizes = sizes * 2
    top = max(sizes) or 1
    step = width / (len(sizes) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (size / top) * (height - 4):.1f}"
        for i, size in enumerate(sizes)
    )


@login_required
def segment_list(request: HttpRequest) -> HttpResponse:
    _require_reader(request)
    segments = list(Segment.objects.select_related("owner").order_by("name", "id"))
    recent = (
        RefreshRun.objects.filter(status=RefreshRun.Status.DONE, segment__in=segments)
        .annotate(n=Window(RowNumber(), partition_by="segment_id", order_by="-id"))
        .values("segment_id", "size", "n")
    )
    series: dict[int, list[int]] = {}
    for row in recent:
        if row["n"] <= SPARK_POINTS:
            series.setdefault(row["segment_id"], []).append(row["size"] or 0)
    for segment in segments:
        segment.sparkline = sparkline_points(list(reversed(series.get(segment.pk, []))))
    return render(
        request,
        "segments/segment_list.html",
        {"segments": segments, "can_manage": user_has_role(request.user, Role.MARKETING)},
    )


def _builder_context(request: HttpRequest, form: SegmentForm, segment: Segment | None) -> dict:
    others = Segment.objects.exclude(pk=segment.pk) if segment else Segment.objects.all()
    catalogue = rules.catalogue(unreadable=customer_fields_hidden_from(request.user))
    catalogue["purposes"] = list(Purpose.objects.values_list("code", flat=True))
    catalogue["segments"] = [
        {"id": pk, "name": name} for pk, name in others.values_list("pk", "name")
    ]
    # The Owner condition is chosen by name among the staff who can own customers.
    catalogue["users"] = [
        {"id": user.pk, "name": user.get_full_name() or user.get_username()}
        for user in staff_choices()
    ]
    return {"form": form, "segment": segment, "catalogue": catalogue}


def _form_initial(segment: Segment) -> dict:
    import json

    interval = segment.refresh_interval
    return {
        "name": segment.name,
        "description": segment.description,
        "kind": segment.kind,
        "rule": json.dumps(segment.rule, indent=2),
        "refresh_every_minutes": int(interval.total_seconds() // 60) if interval else None,
        "min_size_warning": segment.min_size_warning,
    }


def _apply_errors(form: SegmentForm, exc: Exception) -> None:
    if isinstance(exc, RuleInvalid):
        for error in exc.errors:
            form.add_error("rule", str(error))
    elif isinstance(exc, DjangoValidationError) and hasattr(exc, "error_dict"):
        for key, errors in exc.message_dict.items():
            form.add_error(key if key in form.fields else None, errors)
    else:
        form.add_error(None, str(exc))


def _report_save(request: HttpRequest, saved: str, run: RefreshRun | None) -> None:
    """Say what a save did to the members: computed already (no broker: in-process), failed, or
    on their way (a worker has the refresh; the Refreshes table shows its state)."""
    if run is None:
        messages.success(request, f"{saved}.")
        return
    run.refresh_from_db()
    if run.status == RefreshRun.Status.DONE:
        messages.success(request, f"{saved}: {run.size:,} member{'' if run.size == 1 else 's'}.")
    elif run.status == RefreshRun.Status.FAILED:
        messages.warning(request, f"{saved}, but computing its members failed: {run.message}")
    else:
        messages.success(request, f"{saved}; its members are being computed.")


@login_required
def segment_create_view(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    form = SegmentForm(request.POST or None, initial={"rule": '{\n  "all": []\n}'})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        minutes = data["refresh_every_minutes"]
        try:
            # The segment and the refresh that fills it commit together; the refresh runs once
            # they have.
            with transaction.atomic():
                segment = segment_create(
                    name=data["name"],
                    owner=request.user,
                    actor=request.user,
                    kind=data["kind"],
                    rule=data["rule"],
                    description=data["description"],
                    refresh_interval=dt.timedelta(minutes=minutes) if minutes else None,
                    min_size_warning=data["min_size_warning"],
                )
                run = segment_refresh_after_save(segment=segment, created=True)
        except (RuleInvalid, DjangoValidationError) as exc:
            _apply_errors(form, exc)
        else:
            _report_save(request, f"Segment “{segment.name}” saved", run)
            return redirect("segments:detail", segment.pk)
    return render(request, "segments/segment_form.html", _builder_context(request, form, None))


@login_required
def segment_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    segment = get_object_or_404(Segment, pk=pk)
    form = SegmentForm(request.POST or None, initial=_form_initial(segment))
    form.fields["kind"].disabled = True
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        minutes = data["refresh_every_minutes"]
        changes = {
            "name": data["name"],
            "description": data["description"],
            "refresh_interval": dt.timedelta(minutes=minutes) if minutes else None,
            "min_size_warning": data["min_size_warning"],
        }
        if segment.kind == Segment.Kind.RULE:
            changes["rule"] = data["rule"]
        previous_rule = segment.rule
        try:
            with transaction.atomic():
                segment_update(segment=segment, actor=request.user, **changes)
                run = segment_refresh_after_save(segment=segment, previous_rule=previous_rule)
        except (RuleInvalid, DjangoValidationError) as exc:
            _apply_errors(form, exc)
        else:
            _report_save(request, "Segment saved", run)
            return redirect("segments:detail", segment.pk)
    return render(request, "segments/segment_form.html", _builder_context(request, form, segment))


@login_required
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_reader(request)
    segment = get_object_or_404(Segment.objects.select_related("owner"), pk=pk)
    return _segment_detail_page(request, segment, upload_form=MembersUploadForm())


def _segment_detail_page(
    request: HttpRequest, segment: Segment, *, upload_form: MembersUploadForm, status: int = 200
) -> HttpResponse:
    members = segment_members(segment=segment, user=request.user).order_by("-id")
    page = Paginator(members, 25).get_page(request.GET.get("page"))
    history = segment_size_history(segment=segment, limit=60)
    runs = list(segment.runs.order_by("-id")[:20])
    pending = next((run for run in runs if not run.finished), None)
    chart = {
        "labels": [r.finished_at.strftime("%Y-%m-%d %H:%M") for r in history],
        "sizes": [r.size or 0 for r in history],
        "joined": [r.joined for r in history],
        "left": [r.left for r in history],
    }
    return render(
        request,
        "segments/segment_detail.html",
        {
            "segment": segment,
            "page": page,
            "runs": runs,
            "pending": pending,
            "chart": chart,
            "overlap": segment_overlap(segment=segment),
            "protected": rules.uses_protected_characteristics(segment.rule),
            "rule_words": rule_in_words(segment.rule) if segment.kind == Segment.Kind.RULE else "",
            "can_manage": user_has_role(request.user, Role.MARKETING),
            "upload_form": upload_form,
        },
        status=status,
    )


@login_required
@require_POST
def segment_refresh_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    segment = get_object_or_404(Segment, pk=pk)
    segment_refresh_queue(segment=segment, trigger=RefreshRun.Trigger.MANUAL)
    messages.success(request, "Refresh queued; the history below shows it when it is done.")
    return redirect("segments:detail", segment.pk)


@login_required
@require_POST
def segment_members_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    segment = get_object_or_404(Segment, pk=pk)
    form = MembersUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        # The segment page again with the ids as typed, so a typo does not cost the whole list.
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return _segment_detail_page(request, segment, upload_form=form, status=400)
    remove = form.cleaned_data["remove"]
    try:
        if form.cleaned_data.get("file"):
            report = segment_members_from_csv(
                segment=segment, content=form.cleaned_data["file"].read(), remove=remove
            )
            run = report.run
            if report.unmatched:
                lines = ", ".join(f"line {n}: {v}" for n, v in report.unmatched[:20])
                more = len(report.unmatched) - 20
                messages.warning(
                    request,
                    f"{len(report.unmatched)} line(s) matched no customer ({lines}"
                    f"{f', and {more} more' if more > 0 else ''}).",
                )
        else:
            change = segment_remove_members if remove else segment_add_members
            run = change(segment=segment, customers=form.cleaned_data["customer_ids"])
    except DjangoValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("segments:detail", segment.pk)
    messages.success(request, f"{run.joined} added, {run.left} removed; {run.size} members now.")
    return redirect("segments:detail", segment.pk)


def _campaign_count(segment: Segment) -> str:
    """How many campaigns use the segment, through the reverse relations other apps add."""
    total = 0
    for relation in segment._meta.related_objects:
        if relation.many_to_many and relation.related_model._meta.model_name == "campaign":
            total += getattr(segment, relation.get_accessor_name()).count()
    return f"{total:,}"


@login_required
@require_POST
def segment_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    segment = get_object_or_404(Segment, pk=pk)
    if not confirmation_given(request):
        return confirmation_page(
            request,
            Confirmation(
                title=f"Delete the segment “{segment.name}”?",
                action_label="Delete the segment",
                facts=[
                    ("Segment", segment.name),
                    ("Members now", f"{segment.memberships.count():,}"),
                    ("Campaigns that target or exclude it", _campaign_count(segment)),
                ],
                warning="Its members, size history and refresh runs are deleted with it; "
                "this cannot be undone. The customers themselves stay.",
                cancel_url=reverse("segments:detail", args=[segment.pk]),
            ),
        )
    try:
        segment_delete(segment=segment)
    except DjangoValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("segments:detail", segment.pk)
    messages.success(request, f"Segment “{segment.name}” deleted.")
    return redirect("segments:list")
