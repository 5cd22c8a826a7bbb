from django.http import HttpRequest

from crm.roles import Role, user_roles


def navigation(request: HttpRequest) -> dict:
    """The role flags the page frame uses to show navigation."""
    roles = user_roles(request.user)
    return {
        "nav_roles": {
            "sales": Role.SALES in roles,
            "marketing": Role.MARKETING in roles,
            "privacy": Role.PRIVACY in roles,
            "admin": request.user.is_authenticated and request.user.is_staff,
        }
    }
