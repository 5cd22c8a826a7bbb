"""Pages: the KPI view of a segment or of all customers, segment comparison, retention
cohorts, surveys (for marketers), and the answer page a survey's recipient reaches."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from campaigns.models import Send
from crm.roles import Role, user_has_role
from crm.spreadsheet import spreadsheet_safe
from insights.cohorts import cohort_table
from insights.forms import AnswerForm, CohortForm, CompareForm, KpiForm, SurveyForm
from insights.kpi import Period
from insights.models import KpiRefresh, Survey
from insights.selectors import kpi_report, segment_comparison
from insights.services import (
    kpi_period,
    kpi_refresh_queue,
    kpi_snapshot_get,
    survey_answer_record,
    survey_create,
    survey_link_send_id,
    survey_send,
)
from insights.services.surveys import SCALE_WORDS, SurveyLinkError


def _require_marketer(request: HttpRequest) -> None:
    if not user_has_role(request.user, Role.MARKETING):
        raise PermissionDenied


def _form_errors(form, exc: ValidationError) -> None:
    for field, problems in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, problems)


def _period(form) -> Period | None:
    """The form's period, or None with the problems added to the form."""
    if not form.is_valid():
        return None
    try:
        return kpi_period(
            days=form.cleaned_data.get("days") or 30, end=form.cleaned_data.get("end")
        )
    except ValidationError as exc:
        _form_errors(form, exc)
        return None


@login_required
def kpi_view(request: HttpRequest) -> HttpResponse:
    _require_marketer(request)
    form = KpiForm(request.GET or None)
    if not request.GET:
        form = KpiForm({"days": 30})
    period = _period(form)
    context = {"form": form, "period": period}
    if period is not None:
        segment = form.cleaned_data.get("segment")
        snapshot = kpi_snapshot_get(segment=segment, period=period)
        report = kpi_report(snapshot)
        context.update(
            segment=segment,
            snapshot=snapshot,
            report=report,
            chart=report["months"],
            refresh=KpiRefresh.objects.filter(
                segment=segment, days=period.days, end=period.end
            ).first(),
            query=request.GET.urlencode(),
        )
    return render(request, "insights/kpi.html", context)


@login_required
@require_POST
def kpi_refresh_view(request: HttpRequest) -> HttpResponse:
    _require_marketer(request)
    form = KpiForm(request.POST)
    period = _period(form)
    if period is None:
        messages.error(request, "The period is not valid: nothing was recomputed.")
        return redirect("insights:kpis")
    kpi_refresh_queue(segment=form.cleaned_data.get("segment"), period=period, actor=request.user)
    messages.success(request, "The figures are being recomputed.")
    segment = form.cleaned_data.get("segment")
    query = f"days={period.days}&end={period.end.isoformat()}"
    if segment is not None:
        query += f"&segment={segment.pk}"
    return redirect(f"{reverse('insights:kpis')}?{query}")


@login_required
def kpi_csv(request: HttpRequest) -> HttpResponse:
    _require_marketer(request)
    form = KpiForm(request.GET or {"days": 30})
    period = _period(form)
    if period is None:
        return HttpResponse(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
            status=400,
            content_type="text/plain",
        )
    snapshot = kpi_snapshot_get(segment=form.cleaned_data.get("segment"), period=period)
    report = kpi_report(snapshot)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kpis-{period.end}.csv"'
    writer = csv.writer(response)
    writer.writerow(["metric", "population", "period", "value", "previous", "change", "note"])
    label = str(period)
    for metric in report["metrics"]:
        for population in report["populations"]:
            cell = metric[population]
            writer.writerow(
                spreadsheet_safe(value)
                for value in (
                    metric["label"],
                    population,
                    label,
                    cell["current"]["value"],
                    cell["previous"]["value"],
                    cell["change"],
                    cell["current"].get("note", ""),
                )
            )
    return response


@login_required
def compare_view(request: HttpRequest) -> HttpResponse:
    _require_marketer(request)
    form = CompareForm(request.GET or None)
    context: dict = {"form": form}
    period = _period(form) if request.GET else None
    if period is not None:
        segments = list(form.cleaned_data["segments"])
        snapshots = [kpi_snapshot_get(segment=s, period=period) for s in segments]
        context.update(period=period, segments=segments, rows=segment_comparison(snapshots))
    return render(request, "insights/compare.html", context)


@login_required
def cohorts_view(request: HttpRequest) -> HttpResponse:
    _require_marketer(request)
    form = CohortForm(request.GET or {"months": 12})
    table = None
    if form.is_valid():
        data = form.cleaned_data
        table = cohort_table(
            segment_id=data["segment"].pk if data.get("segment") else None,
            country=data.get("country") or "",
            source=data.get("source") or "",
            channel=data.get("channel") or "",
            months=data.get("months") or 12,
        )
    return render(request, "insights/cohorts.html", {"form": form, "table": table})


@login_required
def survey_list(request: HttpRequest) -> HttpResponse:
    _require_marketer(request)
    form = SurveyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            survey = survey_create(actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Survey created: check it, then send it.")
            return redirect("insights:survey_detail", pk=survey.pk)
    surveys = Survey.objects.select_related("segment", "campaign").order_by("-created_at", "-id")
    return render(request, "insights/survey_list.html", {"form": form, "surveys": surveys})


@login_required
def survey_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_marketer(request)
    survey = get_object_or_404(Survey.objects.select_related("segment", "campaign"), pk=pk)
    return render(request, "insights/survey_detail.html", {"survey": survey})


@login_required
@require_POST
def survey_send_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_marketer(request)
    survey = get_object_or_404(Survey, pk=pk)
    try:
        survey_send(survey=survey, actor=request.user)
    except ValidationError as exc:
        messages.error(
            request, "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        )
    else:
        messages.success(request, "The survey is being sent to the segment's consenting members.")
    return redirect("insights:survey_detail", pk=survey.pk)


def survey_answer(request: HttpRequest, token: str) -> HttpResponse:
    """A recipient's answer: one click on a score records it; a comment may follow."""
    try:
        send_id = survey_link_send_id(token)
    except SurveyLinkError as exc:
        return render(request, "insights/survey_answer.html", {"problem": str(exc)}, status=400)
    send = Send.objects.select_related("customer").filter(pk=send_id).first()
    survey = Survey.objects.filter(campaign_id=send.campaign_id).first() if send else None
    if send is None or survey is None or send.customer.erased_at is not None:
        # A neutral page: nothing is recorded and nothing about the person is shown.
        return render(request, "insights/survey_answer.html", {"closed": True})
    context = {"survey": survey, "low_high": SCALE_WORDS[survey.kind]}
    data = request.POST if request.method == "POST" else request.GET
    if "score" not in data:
        return render(request, "insights/survey_answer.html", context)
    form = AnswerForm(data)
    if form.is_valid():
        comment = form.cleaned_data["comment"] if request.method == "POST" else None
        try:
            survey_answer_record(send=send, score=form.cleaned_data["score"], comment=comment)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            context.update(answered=form.cleaned_data["score"], commented=comment is not None)
    context["form"] = form
    status = 400 if form.errors else 200
    return render(request, "insights/survey_answer.html", context, status=status)
