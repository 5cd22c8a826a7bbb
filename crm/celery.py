"""The Celery application: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

# Packages whose `tasks` module autodiscovery would miss: it imports `<app>.tasks` for each
# installed app only, and these packages live inside an app. A task defined anywhere else is
# never registered on a worker, and its jobs would wait forever (tests/integration checks).
TASK_PACKAGES = ["segments.ml"]

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(TASK_PACKAGES)
