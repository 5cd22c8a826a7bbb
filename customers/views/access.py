"""Who may open the customer pages: every view checks the role here and the object through
customers.selectors, so a URL typed by hand reveals nothing a button would not."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from crm.roles import user_edits_customers, user_roles


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed-in staff with a role (sales, marketing, privacy) or an admin."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_roles(request.user):
            raise PermissionDenied("Your account has no role in the CRM yet.")
        return view(request, *args, **kwargs)

    return wrapped


def editor_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff who may create and change customers and accounts (sales and admins)."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_edits_customers(request.user):
            raise PermissionDenied("Only sales staff and admins change customers and accounts.")
        return view(request, *args, **kwargs)

    return wrapped
