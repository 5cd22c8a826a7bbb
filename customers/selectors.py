"""Shared reads: what a user may see."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from crm.roles import user_roles, user_sees_all_customers
from customers.models import Account, Customer


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
