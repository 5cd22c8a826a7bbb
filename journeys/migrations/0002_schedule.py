"""Beat runs the journeys every 2 seconds: new triggers become enrolments, due enrolments move."""

from django.db import migrations

TASK_NAME = "journeys: enrol and move enrolments on"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={"task": "journeys.tasks.journeys_run_task", "interval": every}
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("journeys", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
