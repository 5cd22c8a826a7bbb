"""Suppressions an erasure left under an earlier reason become erasures.

An erasure of a person who had unsubscribed from everything found their addresses already on
the suppression list and kept the unsubscribe reason, so an import or a form could record them
again. The erasure log tells which: a suppression older than an erasure of the same hash.
(One newer than the erasure was added after the person lifted it themselves and stays.)
"""

from django.db import migrations
from django.db.models import Exists, OuterRef


def erasures_restore(apps, schema_editor):
    Suppression = apps.get_model("privacy", "Suppression")
    ErasureLog = apps.get_model("privacy", "ErasureLog")
    for kind, field in (("email", "email_hash"), ("phone", "phone_hash")):
        erased = ErasureLog.objects.filter(
            reason="erasure",
            erased_at__gte=OuterRef("created_at"),
            **{field: OuterRef("value_hash")},
        )
        Suppression.objects.filter(kind=kind).exclude(reason="erasure").filter(
            Exists(erased)
        ).update(reason="erasure")


class Migration(migrations.Migration):
    dependencies = [("privacy", "0004_retention_schedule")]

    operations = [migrations.RunPython(erasures_restore, migrations.RunPython.noop)]
