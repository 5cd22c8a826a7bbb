"""Every write of insights: KPI snapshots and their refresh (kpi), surveys (surveys)."""

from insights.services.kpi import (
    kpi_period,
    kpi_refresh_queue,
    kpi_refresh_run,
    kpi_snapshot_compute,
    kpi_snapshot_get,
    kpi_snapshots_refresh_nightly,
)
from insights.services.surveys import (
    survey_answer_record,
    survey_create,
    survey_link_send_id,
    survey_send,
)

__all__ = [
    "kpi_period",
    "kpi_refresh_queue",
    "kpi_refresh_run",
    "kpi_snapshot_compute",
    "kpi_snapshot_get",
    "kpi_snapshots_refresh_nightly",
    "survey_answer_record",
    "survey_create",
    "survey_link_send_id",
    "survey_send",
]
