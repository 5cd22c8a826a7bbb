from django.db import migrations

PURPOSES = [
    ("email_marketing", "Email marketing", "Marketing messages by email."),
    ("sms_marketing", "SMS marketing", "Marketing messages by text message."),
    ("profiling", "Profiling", "Analysing purchases and behaviour to personalise offers."),
    ("data_sale", "Sale or sharing of data", "Sharing personal data with third parties (CCPA)."),
]


def add_purposes(apps, schema_editor):
    Purpose = apps.get_model("privacy", "Purpose")
    for code, name, description in PURPOSES:
        Purpose.objects.get_or_create(code=code, defaults={"name": name, "description": description})


class Migration(migrations.Migration):
    dependencies = [("privacy", "0001_initial")]
    operations = [migrations.RunPython(add_purposes, migrations.RunPython.noop)]
