"""Campaign delivery, heavy jobs and the rest go to separate queues, so a big import never
waits in front of a campaign."""

import pytest

from crm.celery import app as celery_app
from crm.queues import DELIVERY_TASKS, HEAVY_TASKS


def _queue_of(task_name: str) -> str:
    return celery_app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize("task_name", DELIVERY_TASKS)
def test_campaign_delivery_goes_to_the_delivery_queue(task_name):
    assert _queue_of(task_name) == "delivery"


@pytest.mark.parametrize("task_name", HEAVY_TASKS)
def test_imports_refreshes_ml_and_exports_go_to_the_heavy_queue(task_name):
    assert _queue_of(task_name) == "heavy"


def test_short_scheduled_tasks_go_to_the_default_queue():
    assert _queue_of("campaigns.tasks.campaigns_due_task") == "celery"
    assert _queue_of("segments.tasks.segments_refresh_due_task") == "celery"


def test_every_routed_task_exists():
    celery_app.loader.import_default_modules()

    missing = [name for name in DELIVERY_TASKS + HEAVY_TASKS if name not in celery_app.tasks]

    assert missing == []
