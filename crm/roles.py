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


# The model permissions each role holds. Object-level rules (a salesperson sees only the customers
# they own) live in the functions below and the selectors; these say which kinds of records a
# role may touch at all. A change here needs a migration that calls roles_sync().
ROLE_PERMISSIONS = {
    "sales": {
        "customers": {
            "account": ["view", "add", "change"],
            "customer": ["view", "add", "change"],
            "purchase": ["view", "add"],
            "product": ["view"],
            "event": ["view"],
            "note": ["view", "add", "change"],
            "importjob": ["view", "add"],
            "tag": ["view", "add"],
        },
        "privacy": {"consentrecord": ["view"], "consentstate": ["view"]},
        "deals": {
            "pipeline": ["view"],
            "stage": ["view"],
            "deal": ["view", "add", "change"],
            "dealline": ["view", "add", "change", "delete"],
            "stagechange": ["view"],
            "activity": ["view", "add", "change", "delete"],
            "forecasttarget": ["view"],
        },
    },
    "marketing": {
        "customers": {
            "account": ["view"],
            "customer": ["view"],
            "purchase": ["view"],
            "product": ["view", "add", "change"],
            "event": ["view", "add"],
            "note": ["view"],
            "tag": ["view"],
        },
        "privacy": {"consentstate": ["view"]},
        # Marketers read the pipeline (what is being sold, to whom, when) but change nothing.
        "deals": {
            "pipeline": ["view"],
            "stage": ["view"],
            "deal": ["view"],
            "dealline": ["view"],
            "stagechange": ["view"],
            "activity": ["view"],
            "forecasttarget": ["view"],
        },
    },
    "privacy": {
        "customers": {
            "account": ["view"],
            "customer": ["view", "change"],
            "purchase": ["view"],
            "event": ["view"],
            "note": ["view"],
        },
        "privacy": {
            "purpose": ["view", "add", "change"],
            "consentwording": ["view", "add", "change"],
            "consentrecord": ["view", "add"],
            "consentstate": ["view"],
        },
    },
}


def roles_sync(*, group_model=None, permission_model=None) -> None:
    """Create the role groups and give each exactly the permissions ROLE_PERMISSIONS lists."""
    if group_model is None or permission_model is None:
        from django.contrib.auth.models import Group, Permission

        group_model, permission_model = Group, Permission
    for role, by_app in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        wanted = []
        for app_label, by_model in by_app.items():
            for model, actions in by_model.items():
                codenames = [f"{action}_{model}" for action in actions]
                wanted += permission_model.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
        group.permissions.set(wanted)


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
