"""Roles: the groups staff belong to, and what each may see.

Permissions are checked here and in the API, never only by hiding buttons.
"""

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import TextChoices


class Role(TextChoices):
    SALES = "sales", "Sales"
    MARKETING = "marketing", "Marketing"
    PRIVACY = "privacy", "Privacy"


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The role names of a user; a superuser holds every role."""
    if not user.is_authenticated:
        return frozenset()
    if user.is_superuser:
        return frozenset(Role.values)
    cached = getattr(user, "_crm_roles", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True)) & frozenset(Role.values)
        user._crm_roles = cached
    return cached


def user_has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def user_sees_all_customers(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user may read every customer (not only the ones they own)."""
    roles = user_roles(user)
    if user.is_authenticated and user.is_superuser:
        return True
    if roles & {Role.MARKETING, Role.PRIVACY}:
        return True
    return Role.SALES in roles and settings.CRM_SALES_SEE_ALL


def user_edits_customers(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether the user may create and edit customers and accounts (sales and admins)."""
    return user.is_authenticated and (user.is_superuser or Role.SALES in user_roles(user))
