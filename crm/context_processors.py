from django.http import HttpRequest

from crm.htmx import htmx_config, htmx_key
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


def htmx(request: HttpRequest) -> dict:
    """htmx's configuration for the page and the key of the elements that may send requests
    (crm.htmx): `<div hx-get="..." data-hx-key="{{ htmx_key }}">`."""
    return {"htmx_key": htmx_key(request), "htmx_config": htmx_config(request)}
