"""The beat schedule of RFM and ML segments: RFM, re-assignment and predictive scores nightly."""

from django.db import migrations

TASKS = {
    "segments: RFM scores": ("segments.ml.tasks.rfm_refresh_task", 2),
    "segments: re-assign ML segment clusters": ("segments.ml.tasks.ml_segments_assign_task", 3),
    "segments: churn risk and predicted value": ("segments.ml.tasks.predictive_score_task", 4),
}


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
        ("segments", "0003_ml_scores_and_segments"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
