"""Who may call which API action.

Every endpoint names its role rule: reads need one of the roles in `read_roles` (any role when
it names none), writes one of the roles in `write_roles` (superusers hold every role).
`RolePermissions` checks that rule alone; `RoleModelPermissions` also requires the Django model
permission of the action (view, add, change, delete), which the role groups hold
(crm/migrations/0001_roles.py) and an admin may adjust per group. Records without per-role
model permissions (segments, ML models, campaigns, data-subject requests) use the role rule
alone; an action may name its own `read_roles` (`@action(..., read_roles=...)`).

Objects are checked by the viewsets' querysets, which start from customers_visible_to /
accounts_visible_to: an object the user may not see does not exist for them (404, not 403).
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions

from crm.roles import Role, user_has_role


class RolePermissions(BasePermission):
    """The endpoint's role rule: `read_roles` for reads, `write_roles` for writes."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        if not user_has_role(user, *(getattr(view, "read_roles", ()) or Role.values)):
            return False
        if getattr(view, "action_map", None) is not None and view.action is None:
            return True  # a method the endpoint does not offer: the view answers 405
        if request.method not in SAFE_METHODS:
            return user_has_role(user, *getattr(view, "write_roles", ()))
        return True


class RoleModelPermissions(DjangoModelPermissions):
    """The role rule, plus the model permission of every method, reads included."""

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        if not RolePermissions().has_permission(request, view):
            return False
        if getattr(view, "action_map", None) is not None and view.action is None:
            return True  # a method the endpoint does not offer: the view answers 405
        return super().has_permission(request, view)


class IsAuthorOrSuperuser(BasePermission):
    """Notes are changed or removed by the person who wrote them (or an administrator)."""

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        user = request.user
        return user.is_superuser or obj.author_id == user.pk
