"""The import pages: upload a CSV, watch the job's progress, download the rows that failed."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from crm.roles import user_edits_customers
from customers.forms_import import ImportUploadForm
from customers.importing import import_job_create
from customers.models import ImportJob


def _jobs_visible_to(user) -> QuerySet[ImportJob]:
    if user.is_superuser:
        return ImportJob.objects.all()
    return ImportJob.objects.filter(created_by=user)


def _require_importer(request: HttpRequest) -> None:
    if not user_edits_customers(request.user):
        raise PermissionDenied("Only sales staff and admins may import.")


@login_required
@require_http_methods(["GET", "POST"])
def import_list(request: HttpRequest) -> HttpResponse:
    _require_importer(request)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        job = import_job_create(
            user=request.user,
            kind=form.cleaned_data["kind"],
            file=form.cleaned_data["file"],
            column_map=form.cleaned_data["column_map"],
            date_format=form.cleaned_data["date_format"],
            create_customers=form.cleaned_data["create_customers"],
            strict_duplicates=form.cleaned_data["strict_duplicates"],
        )
        return redirect("customer_import:detail", pk=job.pk)
    jobs = _jobs_visible_to(request.user).select_related("created_by")[:20]
    return render(
        request,
        "customers/import_list.html",
        {"form": form, "jobs": jobs, "field_names": ImportUploadForm.field_names},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_GET
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_importer(request)
    job = get_object_or_404(_jobs_visible_to(request.user), pk=pk)
    return render(request, "customers/import_detail.html", {"job": job})


@login_required
@require_GET
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress box alone, polled by the job page every second while the job runs."""
    _require_importer(request)
    job = get_object_or_404(_jobs_visible_to(request.user), pk=pk)
    return render(request, "customers/import_progress.html", {"job": job})


@login_required
@require_GET
def import_report(request: HttpRequest, pk: int) -> FileResponse:
    _require_importer(request)
    job = get_object_or_404(_jobs_visible_to(request.user), pk=pk)
    if not job.error_report:
        raise Http404("This import has no error report.")
    return FileResponse(
        job.error_report.open("rb"),
        as_attachment=True,
        filename=f"import-{job.pk}-errors.csv",
        content_type="text/csv",
    )
