"""Shared reads: what a user may see."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from crm.roles import Role, user_has_role, user_roles, user_sees_all_customers
from customers.models import Account, Customer

# Profile fields a marketer does not need to target customers, and their export leaves out:
# shown to sales staff, privacy officers and admins only. Marketers see the age instead.
CONTACT_DETAILS = frozenset({"phone", "birth_date"})


def customer_fields_hidden_from(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The profile fields of a customer that the user may not read."""
    if user_has_role(user, Role.SALES, Role.PRIVACY):
        return frozenset()
    return CONTACT_DETAILS


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
