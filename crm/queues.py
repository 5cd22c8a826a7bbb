"""Which Celery queue each kind of work goes to, so a big import never delays a campaign.

Three queues, each with workers of its own (deploy/Procfile, deploy/systemd/):

- delivery: campaign dispatch and delivery batches, where minutes matter to the people waiting
  for a message;
- heavy: imports, segment refreshes, RFM and ML jobs, data exports, bulk consent changes and the
  retention run, which may take minutes to hours each;
- the default queue (CELERY_TASK_DEFAULT_QUEUE): everything else, mostly the short scheduled
  tasks that fan work out to the two others.

The names come from settings (CRM_QUEUE_DELIVERY, CRM_QUEUE_HEAVY), so the integration tests give
each test its own set of queues and a worker consuming all of them.
"""

DELIVERY_TASKS = [
    "campaigns.tasks.campaign_dispatch_task",
    "campaigns.tasks.campaign_send_batch_task",
]
HEAVY_TASKS = [
    "customers.tasks.import_run_task",
    "segments.tasks.segment_refresh_task",
    "segments.ml.tasks.rfm_refresh_task",
    "segments.ml.tasks.ml_job_task",
    "segments.ml.tasks.ml_segments_assign_task",
    "segments.ml.tasks.predictive_score_task",
    "privacy.tasks.data_export_build_task",
    "privacy.tasks.consent_bulk_job_run_task",
    "privacy.tasks.retention_run_task",
    "crm.tasks.bulk_job_run_task",
    "deals.tasks.win_model_train_task",
]


def task_routes(*, delivery: str, heavy: str) -> dict[str, dict[str, str]]:
    """CELERY_TASK_ROUTES for the given queue names; unlisted tasks take the default queue."""
    routes = {name: {"queue": delivery} for name in DELIVERY_TASKS}
    routes.update({name: {"queue": heavy} for name in HEAVY_TASKS})
    return routes


def queues_consumed(*, default: str, delivery: str, heavy: str) -> list[str]:
    """Every queue some worker must consume for every task to run."""
    return list(dict.fromkeys([default, delivery, heavy]))
