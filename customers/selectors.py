"""Shared reads: what a user may see."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from crm.roles import Role, user_roles, user_sees_all_customers
from customers.models import Account, Customer

# The field-visibility map: the customer fields only some roles may read, with those roles
# (admins read everything; every field not named here is read by every role). Marketers do not
# need contact details to target customers: they see the age instead of the birth date.
#
# Everything that shows or selects customers consults this one map, through
# customer_fields_hidden_from(): the API's serializers, filters, orderings and search, the list
# pages and their search, every CSV export and the rule language of segments. A field a user may
# not read is never shown, and using it to filter, order, search or target is refused.
CUSTOMER_FIELD_READERS: dict[str, frozenset[str]] = {
    "phone": frozenset({Role.SALES, Role.PRIVACY}),
    "birth_date": frozenset({Role.SALES, Role.PRIVACY}),
}
RESTRICTED_CUSTOMER_FIELDS = frozenset(CUSTOMER_FIELD_READERS)


def customer_fields_hidden_from(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The profile fields of a customer that the user may not read."""
    if user.is_authenticated and user.is_superuser:
        return frozenset()
    roles = user_roles(user)
    return frozenset(
        name for name, readers in CUSTOMER_FIELD_READERS.items() if not roles & readers
    )


def customer_field_refused(name: str) -> str:
    """The message that refuses a use of a customer field the user may not read."""
    return f"Your role may not read the customer's {name.replace('_', ' ')}."


def customers_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Customer]:
    """Customers the user may read: all for marketing, privacy and admins; owned ones for sales.

    Erased (anonymised) customers are nobody's to read any more.
    """
    customers = Customer.objects.filter(erased_at__isnull=True)
    if user_sees_all_customers(user):
        return customers
    if user_roles(user):
        return customers.filter(owner_id=user.pk)
    return Customer.objects.none()


def accounts_visible_to(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Account]:
    """Accounts the user may read, by the same rule as customers."""
    if user_sees_all_customers(user):
        return Account.objects.all()
    if user_roles(user):
        return Account.objects.filter(owner_id=user.pk)
    return Account.objects.none()
