"""Each webhook campaign signs with a secret of its own, stored with it.

Existing webhook campaigns signed with CAMPAIGNS_WEBHOOK_SECRET, or, when that was unset, with
"webhook:" + SECRET_KEY. An explicitly set CAMPAIGNS_WEBHOOK_SECRET is carried over, so receivers
keep verifying; the key derived from SECRET_KEY is not (a receiver knowing it knows the Django
secret key): those campaigns get a random secret, shown on the campaign page, which their receivers
must be given.
"""

import secrets

from django.conf import settings
from django.db import migrations, models


def secrets_give(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    explicit = getattr(settings, "CAMPAIGNS_WEBHOOK_SECRET", "")
    for campaign in Campaign.objects.filter(channel="webhook", webhook_secret=""):
        campaign.webhook_secret = explicit or secrets.token_urlsafe(32)
        campaign.save(update_fields=["webhook_secret"])


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_beat_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="webhook_secret",
            field=models.CharField(blank=True, editable=False, max_length=200),
        ),
        migrations.RunPython(secrets_give, migrations.RunPython.noop),
    ]
