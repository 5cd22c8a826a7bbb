"""The suppression list: addresses that must never be targeted again, kept as salted hashes.

An erased or fully unsubscribed person's email and phone are hashed with PRIVACY_HASH_SALT; the
hash reveals nothing, yet a later import, API call or campaign can be checked against it, one
address at a time (`suppression_contains`) or set-based in SQL (`suppression_exclude`).
"""

import hashlib

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, F, QuerySet, Value
from django.db.models.functions import SHA256, Concat, Lower, Replace, Trim

from customers.models import Customer
from privacy.models import Suppression

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
    return address_hash(email_normalise(email)) if email and email.strip() else ""


def phone_hash(phone: str | None) -> str:
    normalised = phone_normalise(phone or "")
    return address_hash(normalised) if normalised else ""


class Sha256Hex(SHA256):
    """SHA256 as hex; on PostgreSQL with the built-in sha256() (no pgcrypto extension needed)."""

    def as_postgresql(self, compiler, connection, **extra_context):
        return super().as_sql(
            compiler,
            connection,
            template="ENCODE(SHA256(CONVERT_TO(%(expressions)s, 'UTF8')), 'hex')",
            **extra_context,
        )


def _email_hash_sql(path: str):
    return Sha256Hex(Concat(Value(_salt()), Lower(Trim(F(path))), output_field=CharField()))


def _phone_hash_sql(path: str):
    expr = Lower(Trim(F(path)))
    for char in PHONE_NOISE:
        expr = Replace(expr, Value(char), Value(""))
    return Sha256Hex(Concat(Value(_salt()), expr, output_field=CharField()))


def suppression_add(
    *, reason: str, email: str | None = None, phone: str | None = None, hashes: dict | None = None
) -> int:
    """Suppress an email and/or phone (or already computed hashes {kind: hash}); returns rows added."""
    wanted = dict(hashes or {})
    if email_hash(email):
        wanted[Suppression.Kind.EMAIL] = email_hash(email)
    if phone_hash(phone):
        wanted[Suppression.Kind.PHONE] = phone_hash(phone)
    rows = [Suppression(kind=k, value_hash=h, reason=reason) for k, h in wanted.items() if h]
    before = Suppression.objects.count()
    Suppression.objects.bulk_create(rows, ignore_conflicts=True)
    return Suppression.objects.count() - before


def suppression_lift(*, email: str | None = None, phone: str | None = None) -> None:
    """Lift a suppression because the person themselves asked again, through a verified link."""
    with transaction.atomic():
        if email_hash(email):
            Suppression.objects.filter(
                kind=Suppression.Kind.EMAIL, value_hash=email_hash(email)
            ).delete()
        if phone_hash(phone):
            Suppression.objects.filter(
                kind=Suppression.Kind.PHONE, value_hash=phone_hash(phone)
            ).delete()


def suppression_contains(*, email: str | None = None, phone: str | None = None) -> bool:
    """Whether the email or the phone is on the suppression list."""
    checks = []
    if email_hash(email):
        checks.append((Suppression.Kind.EMAIL, email_hash(email)))
    if phone_hash(phone):
        checks.append((Suppression.Kind.PHONE, phone_hash(phone)))
    return any(Suppression.objects.filter(kind=k, value_hash=h).exists() for k, h in checks)


def suppression_exclude(queryset: QuerySet, *, customer_path: str = "") -> QuerySet:
    """The queryset without the rows whose customer's email or phone is suppressed (one SQL query).

    `customer_path` is the lookup from the queryset's model to Customer ("" for customers,
    "customer" for a model with a customer foreign key).
    """
    prefix = f"{customer_path}__" if customer_path else ""
    emails = Suppression.objects.filter(kind=Suppression.Kind.EMAIL).values("value_hash")
    phones = Suppression.objects.filter(kind=Suppression.Kind.PHONE).values("value_hash")
    return (
        queryset.alias(
            _suppression_email=_email_hash_sql(f"{prefix}email"),
            _suppression_phone=_phone_hash_sql(f"{prefix}phone"),
        )
        .exclude(_suppression_email__in=emails)
        .exclude(_suppression_phone__in=phones)
    )


def customers_suppressed() -> QuerySet[Customer]:
    """Customers whose email or phone is on the suppression list."""
    return Customer.objects.exclude(pk__in=suppression_exclude(Customer.objects.all()).values("pk"))
