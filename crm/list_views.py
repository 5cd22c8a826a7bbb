"""Saved views on the list pages (deals, customers, accounts): the list shows them above its
table (templates/crm/_saved_views.html) with a form to save the current filter and sort; the
rules are crm/saved_views.py's."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from crm import saved_views
from crm.bulk import bulk_list_get


def saved_views_for(request: HttpRequest, list_name: str) -> list[dict]:
    """The views of the list the user sees (their own and the shared ones), with their links."""
    views = (
        saved_views.saved_views_visible_to(request.user, list_name=list_name)
        .select_related("owner")
        .order_by("name", "id")[:50]
    )
    return [{"view": v, "query": saved_views.saved_view_querystring(v)} for v in views]


def _list_url(list_name: str) -> str:
    try:
        return reverse(bulk_list_get(list_name).list_url)
    except ValidationError as error:
        raise PermissionDenied("No such list.") from error


@require_POST
@login_required
def saved_view_save(request: HttpRequest, list_name: str) -> HttpResponse:
    """Save the list's filter and sort under a name, for oneself or shared with colleagues."""
    list_url = _list_url(list_name)
    if not bulk_list_get(list_name).may_read(request.user):
        raise PermissionDenied("Your role does not open this list.")
    query = QueryDict(request.POST.get("query", "")[:2000])
    try:
        view = saved_views.saved_view_create(
            owner=request.user,
            list_name=list_name,
            name=request.POST.get("name", ""),
            query={k: query.get(k) for k in query},
            shared=request.POST.get("shared") == "on",
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(f"{list_url}?{query.urlencode()}")
    messages.success(request, f"View {view.name} saved.")
    return redirect(f"{list_url}?{saved_views.saved_view_querystring(view)}")


@require_POST
@login_required
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    view = get_object_or_404(saved_views.saved_views_visible_to(request.user), pk=pk)
    try:
        saved_views.saved_view_delete(view=view, actor=request.user)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"View {view.name} deleted.")
    return redirect(_list_url(view.list_name))
