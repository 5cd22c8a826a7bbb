"""The beat schedule: start due campaigns, feed triggered ones, and sweep stuck sends, each minute."""

from django.db import migrations

TASKS = {
    "campaigns: start due and triggered campaigns": "campaigns.tasks.campaigns_due_task",
    "campaigns: release stuck sends": "campaigns.tasks.sends_sweep_task",
}


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    for name, task in TASKS.items():
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=TASKS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
