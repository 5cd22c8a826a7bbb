"""Phone hashes follow the number, not the way it was written: each customer's stored phone hash
is recomputed from their stored phone with customers.phones.phone_key (the digits of the E.164
form; PHONE_DEFAULT_REGION for numbers without a country code). The phone itself is unchanged.
"""

from django.db import migrations


def phone_hashes_recompute(apps, schema_editor):
    from customers.contact_hashes import phone_hashes_refresh

    phone_hashes_refresh(apps.get_model("customers", "Customer").objects.all())


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0007_drop_redundant_customer_indexes"),
    ]

    operations = [
        migrations.RunPython(phone_hashes_recompute, migrations.RunPython.noop, elidable=True),
    ]
