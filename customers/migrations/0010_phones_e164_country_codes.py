"""Stored data follows the field rules of customers.fields.

Phones: each customer's phone is stored in E.164 form (+49301234567), read as the form, the API
and the import now read it (PHONE_DEFAULT_REGION for a number written without its country
code). A stored text that is no possible phone number is kept as it is: nobody can tell which
number was meant, and its hash stays what it was. The phone hash is recomputed with the number
(it is the hash of the E.164 digits, so it does not change for any number that is read).

Countries: stored codes are trimmed and upper-cased, and the two codes people use that ISO 3166
reserves for another purpose become the country's code: UK is GB, EL is GR. Any other value that
is no ISO 3166-1 alpha-2 code is kept as it is, never guessed (a "GE" may be Georgia or a
Germany typed into the old free-text field): the edit form and the API refuse it on the next
save until someone picks the country.
"""

from django.db import migrations
from django.db.models import Q

COUNTRY_RENAMES = {"UK": "GB", "EL": "GR"}


def phones_to_e164(apps, schema_editor):
    from customers.contact_hashes import phone_hash
    from customers.phones import phone_e164

    Customer = apps.get_model("customers", "Customer")
    batch = []
    rows = Customer.objects.exclude(phone="").order_by().values_list("pk", "phone", "phone_hash")
    for pk, phone, stored_hash in rows.iterator(chunk_size=2000):
        e164 = phone_e164(phone) or phone
        wanted_hash = phone_hash(e164)
        if e164 != phone or wanted_hash != stored_hash:
            batch.append(Customer(pk=pk, phone=e164, phone_hash=wanted_hash))
        if len(batch) >= 2000:
            Customer.objects.bulk_update(batch, ["phone", "phone_hash"])
            batch = []
    if batch:
        Customer.objects.bulk_update(batch, ["phone", "phone_hash"])


def countries_to_codes(apps, schema_editor):
    from django.db.models.functions import Trim, Upper

    for model in ("Customer", "Account"):
        rows = apps.get_model("customers", model).objects.exclude(country="")
        rows.exclude(Q(country__regex=r"^[A-Z]{2}$")).update(country=Upper(Trim("country")))
        for old, new in COUNTRY_RENAMES.items():
            rows.filter(country=old).update(country=new)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0009_field_rules"),
    ]

    operations = [
        migrations.RunPython(phones_to_e164, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(countries_to_codes, migrations.RunPython.noop, elidable=True),
    ]
