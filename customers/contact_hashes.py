"""Salted hashes of a customer's email and phone, stored on the customer row.

The suppression list (privacy) holds the same hashes of erased or fully unsubscribed addresses.
Keeping the hash of each customer's current address on the row, maintained by every write path
(save, imports, bulk creates), lets a campaign or an export leave suppressed people out with a
join on an indexed column instead of hashing every customer's address at query time.

The salt is PRIVACY_HASH_SALT. When it changes, the suppression list no longer matches anything
and the stored hashes must be recomputed: `python manage.py refresh_contact_hashes`.

A phone number is hashed from its comparison key (customers.phones.phone_key: the digits of its
E.164 form), so "+49 30 1234567" and "030 1234567" (PHONE_DEFAULT_REGION DE) are one number.
"""

import hashlib

from django.conf import settings
from django.db.models import CharField, Expression, F, Q, QuerySet, Value
from django.db.models.functions import SHA256, Concat, Lower, Trim

from customers.phones import phone_key

# Characters a phone number is written with besides digits (a text search of files drops them).
PHONE_NOISE = (" ", "-", "(", ")", ".", "+", "/")


def _salt() -> str:
    return settings.PRIVACY_HASH_SALT


def email_normalise(email: str) -> str:
    return email.strip().lower()


def phone_normalise(phone: str) -> str:
    """The form phone numbers are compared and hashed in (customers.phones.phone_key)."""
    return phone_key(phone)


def address_hash(normalised: str) -> str:
    """The salted hash of a normalised address, as stored and as computed in SQL."""
    return hashlib.sha256(f"{_salt()}{normalised}".encode()).hexdigest()


def email_hash(email: str | None) -> str:
    """The hash of an email address; "" when there is none."""
    return address_hash(email_normalise(email)) if email and email.strip() else ""


def phone_hash(phone: str | None) -> str:
    """The hash of a phone number; "" when there is none."""
    normalised = phone_normalise(phone or "")
    return address_hash(normalised) if normalised else ""


def contact_hashes(*, email: str | None, phone: str | None) -> dict[str, str]:
    """The stored hash fields of a customer with this email and phone."""
    return {"email_hash": email_hash(email), "phone_hash": phone_hash(phone)}


class Sha256Hex(SHA256):
    """SHA256 as hex; on PostgreSQL with the built-in sha256() (no pgcrypto extension needed)."""

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            template="ENCODE(SHA256(CONVERT_TO(%(expressions)s, 'UTF8')), 'hex')",
            **extra_context,
        )


def email_hash_sql(path: str) -> Expression:
    """The hash of the normalised email at `path`, computed by the database (NULL when blank)."""
    return Sha256Hex(Concat(Value(_salt()), Lower(Trim(F(path))), output_field=CharField()))


def phone_hashes_refresh(queryset: QuerySet, *, batch_size: int = 2000) -> int:
    """Recompute the stored phone hashes of the customers in `queryset`; returns how many changed.

    Reading a number needs the phonenumbers metadata, so this runs in Python, a batch of rows at a
    time, and writes only the rows whose hash changes.
    """
    changed = 0
    rows = queryset.order_by().values_list("pk", "phone", "phone_hash")
    batch: list = []
    model = queryset.model
    for pk, phone, stored in rows.iterator(chunk_size=batch_size):
        wanted = phone_hash(phone)
        if wanted != stored:
            batch.append(model(pk=pk, phone_hash=wanted))
        if len(batch) >= batch_size:
            model._default_manager.bulk_update(batch, ["phone_hash"])
            changed, batch = changed + len(batch), []
    if batch:
        model._default_manager.bulk_update(batch, ["phone_hash"])
        changed += len(batch)
    return changed


def contact_hashes_refresh(queryset: QuerySet) -> int:
    """Recompute the stored hashes of the customers in `queryset`: the emails set-based in two
    UPDATEs, the phones in batches (phone_hashes_refresh).

    Used by the migrations that added and re-keyed the columns, after a change of salt, and by
    bulk loaders that write customers without going through the model (COPY).
    """
    with_email = Q(email__isnull=False) & ~Q(email__regex=r"^\s*$")
    changed = queryset.filter(with_email).update(email_hash=email_hash_sql("email"))
    queryset.exclude(with_email).exclude(email_hash="").update(email_hash="")
    return changed + phone_hashes_refresh(queryset)
