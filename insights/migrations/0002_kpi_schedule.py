"""The beat schedule of insights: the KPI figures of every segment and all customers, nightly."""

from django.db import migrations

TASKS = {"insights: KPI figures per segment": ("insights.tasks.kpi_snapshots_nightly_task", 5)}


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, (task, hour) in TASKS.items():
        nightly, _ = CrontabSchedule.objects.get_or_create(
            minute="0", hour=str(hour), day_of_week="*", day_of_month="*", month_of_year="*"
        )
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "crontab": nightly})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=TASKS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
