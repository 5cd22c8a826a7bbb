"""The suppression list: addresses that must never be targeted again, kept as salted hashes.

An erased or fully unsubscribed person's email and phone are hashed with PRIVACY_HASH_SALT; the
hash reveals nothing, yet a later import, API call or campaign can be checked against it, one
address at a time (`suppression_contains`) or set-based in SQL (`suppression_exclude`), which
joins on the hashes every customer row keeps of its own address (customers.contact_hashes).
"""

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from customers.contact_hashes import (  # noqa: F401 (the hashes are part of this module's API)
    address_hash,
    email_hash,
    email_normalise,
    phone_hash,
    phone_normalise,
)
from customers.models import Customer
from privacy.models import Suppression


def suppression_add(
    *, reason: str, email: str | None = None, phone: str | None = None, hashes: dict | None = None
) -> int:
    """Suppress an email and/or phone (or already computed hashes {kind: hash}); returns rows added.

    An erasure turns an address already suppressed for another reason into an erasure; any
    other reason leaves an existing suppression as it is."""
    wanted = dict(hashes or {})
    if email_hash(email):
        wanted[Suppression.Kind.EMAIL] = email_hash(email)
    if phone_hash(phone):
        wanted[Suppression.Kind.PHONE] = phone_hash(phone)
    rows = [Suppression(kind=k, value_hash=h, reason=reason) for k, h in wanted.items() if h]
    before = Suppression.objects.count()
    Suppression.objects.bulk_create(rows, ignore_conflicts=True)
    if reason == Suppression.Reason.ERASURE and rows:
        # An erasure outranks an earlier suppression of the same address (the person had
        # unsubscribed first): the reason is what refuses the address to an import or a form.
        pairs = Q()
        for row in rows:
            pairs |= Q(kind=row.kind, value_hash=row.value_hash)
        Suppression.objects.filter(pairs).exclude(reason=reason).update(reason=reason)
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


ERASED_ADDRESS = (
    "belongs to a person whose data was erased at their request (suppression list); "
    "it is not recorded again"
)


def erased_addresses_refused(
    email_hashes: set[str], phone_hashes: set[str]
) -> dict[tuple[str, str], str]:
    """customers.registry's address check, in one query: the (kind, hash) pairs among these
    hashes that an erasure suppressed. A person erased at their request is not re-created from
    an import or a form; an address suppressed because its owner unsubscribed may still be
    recorded (and is never targeted)."""
    # Two array parameters, not one placeholder per hash: an import asks for thousands at once.
    table = connection.ops.quote_name(Suppression._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT kind, value_hash FROM {table} WHERE reason = %s AND ("
            "(kind = %s AND value_hash = ANY(%s::text[])) "
            "OR (kind = %s AND value_hash = ANY(%s::text[])))",
            [
                Suppression.Reason.ERASURE,
                Suppression.Kind.EMAIL,
                list(email_hashes),
                Suppression.Kind.PHONE,
                list(phone_hashes),
            ],
        )
        return {(kind, value): ERASED_ADDRESS for kind, value in cursor.fetchall()}


def suppression_exclude(queryset: QuerySet, *, customer_path: str = "") -> QuerySet:
    """The queryset without the rows whose customer's email or phone is suppressed (one SQL query).

    `customer_path` is the lookup from the queryset's model to Customer ("" for customers,
    "customer" for a model with a customer foreign key).
    """
    prefix = f"{customer_path}__" if customer_path else ""
    emails = Suppression.objects.filter(kind=Suppression.Kind.EMAIL).values("value_hash")
    phones = Suppression.objects.filter(kind=Suppression.Kind.PHONE).values("value_hash")
    # The customer's hashes are stored (and indexed) on the row: a join, no hashing per row.
    return queryset.exclude(**{f"{prefix}email_hash__in": emails}).exclude(
        **{f"{prefix}phone_hash__in": phones}
    )


def customers_suppressed() -> QuerySet[Customer]:
    """Customers whose email or phone is on the suppression list."""
    return Customer.objects.exclude(pk__in=suppression_exclude(Customer.objects.all()).values("pk"))
