"""Phone suppressions follow the number, not the way it was written.

Phone hashes were taken over the number with its punctuation stripped ("030 1234567" ->
"0301234567"); they are now taken over the digits of its E.164 form ("49301234567", see
customers.phones.phone_key). A suppression entry holds only a hash, so it can be recomputed only
where the number behind it is still known: for every customer whose stored phone had a suppressed
hash under the old rule, an entry with the new hash is added, with the same reason (the old entry
stays). That covers every unsubscribed customer and every other customer sharing a suppressed
number.

An erased person's number is known nowhere any more (the erasure log holds hashes too). Their
entry keeps matching every way of writing the number when it was recorded in international form
(+49 30 1234567: the old and the new rule give the same digits); one recorded in national form
(030 1234567) matches from now on only a number with no possible reading, written with the same
digits.
"""

import hashlib

from django.conf import settings
from django.db import migrations

# The characters the old rule stripped, as it stood before this migration.
OLD_PHONE_NOISE = (" ", "-", "(", ")", ".", "+", "/")


def _old_key(phone: str) -> str:
    value = phone.strip().lower()
    for char in OLD_PHONE_NOISE:
        value = value.replace(char, "")
    return value


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}{key}".encode()).hexdigest()


def phone_suppressions_follow(apps, schema_editor):
    from customers.phones import phone_key

    Customer = apps.get_model("customers", "Customer")
    Suppression = apps.get_model("privacy", "Suppression")
    if not Suppression.objects.filter(kind="phone").exists():
        return
    salt = settings.PRIVACY_HASH_SALT
    phones = Customer.objects.exclude(phone="").order_by().values_list("phone", flat=True)

    def follow(batch: list[str]) -> None:
        renamed: dict[str, set[str]] = {}
        for phone in batch:
            old, new = _old_key(phone), phone_key(phone)
            if old and new and old != new:
                renamed.setdefault(_hash(salt, old), set()).add(_hash(salt, new))
        found = Suppression.objects.filter(kind="phone", value_hash__in=list(renamed))
        rows, erased = [], []
        for old_hash, reason in found.values_list("value_hash", "reason"):
            for new_hash in renamed[old_hash]:
                rows.append(Suppression(kind="phone", value_hash=new_hash, reason=reason))
                if reason == "erasure":
                    erased.append(new_hash)
        Suppression.objects.bulk_create(rows, ignore_conflicts=True)
        if erased:  # an erasure outranks another reason, as privacy.suppression.suppression_add
            Suppression.objects.filter(kind="phone", value_hash__in=erased).update(
                reason="erasure"
            )

    batch: list[str] = []
    for phone in phones.distinct().iterator(chunk_size=2000):
        batch.append(phone)
        if len(batch) >= 2000:
            follow(batch)
            batch = []
    if batch:
        follow(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0005_suppression_erasure_reason"),
        ("customers", "0008_customer_phone_hash_e164"),
    ]

    operations = [
        migrations.RunPython(phone_suppressions_follow, migrations.RunPython.noop, elidable=True)
    ]
