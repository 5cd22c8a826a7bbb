"""Celery tasks of insights: thin, ids only, safe to run twice."""

from celery import shared_task

from insights.models import KpiRefresh
from insights.services import kpi_refresh_run, kpi_snapshots_refresh_nightly


@shared_task(acks_late=True)
def kpi_refresh_task(refresh_id: int) -> None:
    refresh = KpiRefresh.objects.filter(pk=refresh_id).first()
    if refresh is None:  # its segment was deleted since
        return
    kpi_refresh_run(refresh=refresh)


@shared_task(acks_late=True)
def kpi_snapshots_nightly_task() -> int:
    """Recompute the KPI figures of every segment and of all customers (beat, nightly)."""
    return kpi_snapshots_refresh_nightly()
