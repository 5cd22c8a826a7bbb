"""Bulk actions on deals become the shared crm.BulkJob (the customer and account lists have them
too): the jobs recorded so far are copied over, then DealBulkJob goes."""

from django.db import migrations


def copy_jobs(apps, schema_editor):
    DealBulkJob = apps.get_model("deals", "DealBulkJob")
    BulkJob = apps.get_model("crm", "BulkJob")
    BulkJob.objects.bulk_create(
        BulkJob(
            list_name="deals",
            action=job.action,
            params={"owner": job.owner_id} if job.owner_id else {},
            ids=job.deal_ids,
            by_filter=job.by_filter,
            filter=job.filter,
            matched=job.matched,
            progress_total=job.matched if job.status == "done" else 0,
            progress_done=job.matched if job.status == "done" else 0,
            changed=job.changed,
            created_by_id=job.created_by_id,
            status=job.status,
            message=job.message,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )
        for job in DealBulkJob.objects.order_by("id").iterator()
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0004_bulk_jobs"),
        ("deals", "0003_deal_bulk_jobs"),
    ]

    operations = [
        migrations.RunPython(copy_jobs, migrations.RunPython.noop),
        migrations.DeleteModel(name="DealBulkJob"),
    ]
