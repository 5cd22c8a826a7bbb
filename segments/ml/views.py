"""Pages for marketers: RFM grid, ML segments with their models and clusters, churn model."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from crm.roles import Role, user_has_role
from segments.ml.features import FEATURE_GROUPS
from segments.ml.forms import (
    ClusterRenameForm,
    LifetimeFitForm,
    MLSegmentForm,
    PredictiveTrainForm,
    RfmRunForm,
)
from segments.ml.models import Cluster, LifetimeModel, MLJob, MLSegment, PredictiveModel, RfmRun
from segments.ml.scoring import feature_label
from segments.ml.selectors import rfm_class_counts, rfm_grid, rfm_last_run
from segments.ml.services import (
    cluster_rename,
    ml_job_queue,
    ml_segment_create,
    ml_segment_delete,
    rfm_refresh_queue,
)


def _require_marketing(request: HttpRequest) -> None:
    if not user_has_role(request.user, Role.MARKETING):
        raise PermissionDenied


def _form_errors(form, exc: ValidationError) -> None:
    for key, errors in exc.message_dict.items():
        form.add_error(key if key in form.fields else None, errors)


@login_required
def rfm_page(request: HttpRequest) -> HttpResponse:
    _require_marketing(request)
    form = RfmRunForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                run = rfm_refresh_queue(
                    reference_date=form.cleaned_data["reference_date"],
                    window_days=form.cleaned_data["window_days"],
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                past = run.reference_date < timezone.localdate()
                messages.success(
                    request,
                    f"RFM run {run.pk} queued"
                    + (" as a back-test: the current scores stay." if past else "."),
                )
                return redirect("segments_ml:rfm")
    last = rfm_last_run()
    classes = rfm_class_counts()
    from segments.models import Segment

    slugs = {s.slug: s.pk for s in Segment.objects.filter(slug__startswith="rfm-")}
    for row in classes:
        row["segment_id"] = slugs.get("rfm-" + row["rfm_class"].lower().replace(" ", "-"))
    return render(
        request,
        "segments/ml/rfm.html",
        {
            "form": form,
            "grid": rfm_grid(),
            "classes": classes,
            "last_run": last,
            "pending": RfmRun.objects.filter(status__in=["queued", "running"]).first(),
            "runs": RfmRun.objects.all()[:10],
            "backtests": RfmRun.objects.filter(backtest=True, status=RfmRun.Status.DONE)[:5],
        },
    )


@login_required
def ml_segment_list(request: HttpRequest) -> HttpResponse:
    _require_marketing(request)
    ml_segments = MLSegment.objects.select_related("current_version").prefetch_related("versions")
    return render(request, "segments/ml/ml_segment_list.html", {"ml_segments": ml_segments})


@login_required
def ml_segment_create_view(request: HttpRequest) -> HttpResponse:
    _require_marketing(request)
    form = MLSegmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            ml_segment = ml_segment_create(owner=request.user, **form.cleaned_definition())
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            if request.POST.get("train"):
                ml_job_queue(kind=MLJob.Kind.TRAIN, user=request.user, ml_segment=ml_segment)
            return redirect("segments_ml:detail", pk=ml_segment.pk)
    return render(request, "segments/ml/ml_segment_form.html", {"form": form})


@login_required
def ml_segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_marketing(request)
    ml_segment = get_object_or_404(MLSegment.objects.select_related("current_version"), pk=pk)
    version = ml_segment.current_version
    version_id = request.GET.get("version")
    if version_id and str(version_id).isdigit():
        version = get_object_or_404(ml_segment.versions, pk=int(version_id))
    clusters = list(ml_segment.clusters.filter(active=True).select_related("segment"))
    by_label = {c.label: c for c in clusters}
    chart = None
    if version is not None:
        features = version.features
        chart = {
            "features": [feature_label(f) for f in features],
            "clusters": [
                {
                    "label": p["label"],
                    "name": by_label[p["label"]].name
                    if p["label"] in by_label
                    else f"#{p['label']}",
                    "z": [p["z"].get(f, 0) for f in features],
                    "size": p["size"],
                }
                for p in version.profiles
            ],
            "points": version.projection.get("points", []),
            "explained": version.projection.get("explained", []),
        }
    job = ml_segment.jobs.first()
    return render(
        request,
        "segments/ml/ml_segment_detail.html",
        {
            "ml_segment": ml_segment,
            "version": version,
            "versions": ml_segment.versions.all()[:20],
            "clusters": clusters,
            "chart": chart,
            "job": job if job and not job.finished else None,
            "last_job": job,
            "feature_groups": [
                FEATURE_GROUPS[g] for g in ml_segment.features if g in FEATURE_GROUPS
            ],
            "rename_form": ClusterRenameForm(),
        },
    )


@login_required
@require_POST
def ml_segment_train_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_marketing(request)
    ml_segment = get_object_or_404(MLSegment, pk=pk)
    kind = MLJob.Kind.ASSIGN if request.POST.get("assign") else MLJob.Kind.TRAIN
    ml_job_queue(kind=kind, user=request.user, ml_segment=ml_segment)
    messages.success(
        request, "Training queued." if kind == MLJob.Kind.TRAIN else "Assignment queued."
    )
    return redirect("segments_ml:detail", pk=pk)


@login_required
@require_POST
def ml_segment_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_marketing(request)
    ml_segment = get_object_or_404(MLSegment, pk=pk)
    try:
        ml_segment_delete(ml_segment=ml_segment)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
        return redirect("segments_ml:detail", pk=pk)
    messages.success(request, "ML segment deleted.")
    return redirect("segments_ml:list")


@login_required
@require_POST
def cluster_rename_view(request: HttpRequest, pk: int) -> HttpResponse:
    _require_marketing(request)
    cluster = get_object_or_404(Cluster.objects.select_related("ml_segment", "segment"), pk=pk)
    form = ClusterRenameForm(request.POST)
    if form.is_valid():
        try:
            cluster_rename(cluster=cluster, name=form.cleaned_data["name"])
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            messages.success(request, f"Cluster renamed to {cluster.name}.")
    else:
        messages.error(request, "Name: " + "; ".join(form.errors.get("name", ["invalid"])))
    return redirect("segments_ml:detail", pk=cluster.ml_segment_id)


@login_required
def ml_job_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress partial the pages poll with htmx; a finished job reloads the page."""
    _require_marketing(request)
    job = get_object_or_404(MLJob, pk=pk)
    response = render(request, "segments/ml/_job.html", {"job": job})
    if job.finished and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@login_required
def predictive_page(request: HttpRequest) -> HttpResponse:
    _require_marketing(request)
    form = PredictiveTrainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        options = {"horizon_days": form.cleaned_data["horizon_days"]}
        if form.cleaned_data.get("as_of"):
            options["as_of"] = form.cleaned_data["as_of"].isoformat()
        ml_job_queue(kind=MLJob.Kind.PREDICTIVE, user=request.user, options=options)
        messages.success(request, "Training of the churn and value models queued.")
        return redirect("segments_ml:predictive")
    model = PredictiveModel.objects.filter(active=True).first()
    latest = PredictiveModel.objects.filter(backtest=False).first()
    refused = latest if latest is not None and not latest.active else None
    job = MLJob.objects.filter(kind__in=[MLJob.Kind.PREDICTIVE, MLJob.Kind.LIFETIME]).first()
    chart = None
    if model is not None:
        chart = {"calibration": model.metrics.get("calibration", [])}
    return render(
        request,
        "segments/ml/predictive.html",
        {
            "form": form,
            "lifetime_form": LifetimeFitForm(),
            "refused": refused,
            "backtests": PredictiveModel.objects.filter(backtest=True)[:5],
            "lifetime": LifetimeModel.objects.filter(active=True).first(),
            "lifetime_backtests": LifetimeModel.objects.filter(backtest=True)[:5],
            "model": model,
            "chart": chart,
            "job": job if job and not job.finished else None,
            "last_job": job,
        },
    )


@login_required
@require_POST
def lifetime_fit_view(request: HttpRequest) -> HttpResponse:
    """Queue a lifetime-value fit as of a day (a past day is a back-test)."""
    _require_marketing(request)
    form = LifetimeFitForm(request.POST)
    if not form.is_valid():
        for name, errors in form.errors.items():
            label = form.fields[name].label if name in form.fields else name
            messages.error(request, f"{label}: {'; '.join(errors)}")
        return redirect("segments_ml:predictive")
    options = {k: v for k, v in form.cleaned_data.items() if v is not None}
    if "as_of" in options:
        options["as_of"] = options["as_of"].isoformat()
    ml_job_queue(kind=MLJob.Kind.LIFETIME, user=request.user, options=options)
    messages.success(request, "Lifetime value fit queued.")
    return redirect("segments_ml:predictive")
