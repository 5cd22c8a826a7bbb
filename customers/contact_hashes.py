"""Salted hashes of a customer's email and phone, stored on the customer row.

The suppression list (privacy) holds the same hashes of erased or fully unsubscribed addresses.
Keeping the hash of each customer's current address on the row, maintained by every write path
(save, imports, bulk creates), lets a campaign or an export leave suppressed people out with a
join on an indexed column instead of hashing every customer's address at query time.

The salt is PRIVACY_HASH_SALT. When it changes, the suppression list no longer matches anything
and the stored hashes must be recomputed: `python manage.py refresh_contact_hashes`.
"""

import hashlib

from django.conf import settings
from django.db.models import CharField, Expression, F, Q, QuerySet, Value
from django.db.models.functions import SHA256, Concat, Lower, Replace, Trim

# Characters a phone number is written with besides digits; SQL and Python strip the same ones.
PHONE_NOISE = (" ", "-", "(", ")", ".", "+", "/")


def _salt() -> str:
    return settings.PRIVACY_HASH_SALT


def email_normalise(email: str) -> str:
    return email.strip().lower()


def phone_normalise(phone: str) -> str:
    value = phone.strip().lower()
    for char in PHONE_NOISE:
        value = value.replace(char, "")
    return value


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


def _phone_normalised_sql(path: str) -> Expression:
    expr = Lower(Trim(F(path)))
    for char in PHONE_NOISE:
        expr = Replace(expr, Value(char), Value(""))
    return expr


def phone_hash_sql(path: str) -> Expression:
    """The hash of the normalised phone at `path`, computed by the database."""
    return Sha256Hex(Concat(Value(_salt()), _phone_normalised_sql(path), output_field=CharField()))


def contact_hashes_refresh(queryset: QuerySet) -> int:
    """Recompute the stored hashes of the customers in `queryset`, set-based: two UPDATEs.

    Used by the migration that added the columns, after a change of salt, and by bulk loaders
    that write customers without going through the model (COPY).
    """
    with_email = Q(email__isnull=False) & ~Q(email__regex=r"^\s*$")
    changed = queryset.filter(with_email).update(email_hash=email_hash_sql("email"))
    queryset.exclude(with_email).exclude(email_hash="").update(email_hash="")
    blank_phone = _phone_normalised_sql("phone")
    phones = queryset.alias(_phone_normalised=blank_phone)
    changed += phones.exclude(_phone_normalised="").update(phone_hash=phone_hash_sql("phone"))
    phones.filter(_phone_normalised="").exclude(phone_hash="").update(phone_hash="")
    return changed
