"""The pages of bulk actions, the same for every list (crm/bulk.py): the bar above a list's table
posts here; an export answers at once, every other action asks first, then runs as a job whose
page shows its progress."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from crm import bulk
from crm.confirm import Confirmation, confirmation_given, confirmation_page

SCOPES = [("selected", "The rows ticked"), ("matching", "Every row matching the filter")]


class BulkForm(forms.Form):
    """An action over the rows ticked on a list, or over every row matching its filter; the
    fields of what the list's actions need (new owner, tag, segment) come from the actions."""

    action = forms.ChoiceField()
    scope = forms.ChoiceField(choices=SCOPES, initial="selected", widget=forms.RadioSelect)
    filter = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    def __init__(self, *args, bulk_list: bulk.BulkList, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.bulk_list = bulk_list
        self.fields["action"].choices = bulk.bulk_action_choices(bulk_list)
        noun = bulk_list.noun
        self.fields["scope"].choices = [
            ("selected", f"The {noun} ticked"),
            ("matching", f"Every one of the {noun} matching the filter"),
        ]
        self.param_names = []
        for action in bulk_list.actions.values():
            if action.param and action.field and action.param not in self.fields:
                field = action.field(user)
                if field is None:
                    continue
                field.required = False
                self.fields[action.param] = field
                self.param_names.append(action.param)

    @property
    def param_fields(self):
        return [self[name] for name in self.param_names]

    def params(self) -> dict:
        values = {}
        for name in self.param_names:
            value = self.cleaned_data.get(name)
            if value not in (None, ""):
                values[name] = getattr(value, "pk", value)
        return values


def bulk_form_for(request: HttpRequest, list_name: str, *, query: str = "") -> BulkForm:
    """The bar above a list's table, carrying the list's current filter."""
    return BulkForm(
        bulk_list=bulk.bulk_list_get(list_name),
        user=request.user,
        initial={"filter": query},
        auto_id=f"bulk-{list_name}-%s",
    )


@require_POST
@login_required
def bulk_action(request: HttpRequest, list_name: str) -> HttpResponse:
    """One action over the rows ticked, or every row matching the list's filter: an export
    answers at once; anything else asks first, then runs as a job."""
    try:
        bulk_list = bulk.bulk_list_get(list_name)
    except ValidationError as error:
        raise PermissionDenied("No such list.") from error
    if not bulk_list.may_read(request.user):
        raise PermissionDenied(f"Your role does not open the {bulk_list.noun}.")
    form = BulkForm(request.POST, bulk_list=bulk_list, user=request.user)
    back = reverse(bulk_list.list_url)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{field}: {error}")
        return redirect(back)
    data = form.cleaned_data
    query = QueryDict(data["filter"] or "")
    back = f"{back}?{query.urlencode()}" if query else back
    ids = None
    try:
        if data["scope"] == "selected":
            ids = bulk.bulk_clean_ids(request.POST.getlist("ids"), noun=bulk_list.noun)
        query = bulk_list.clean_filter({k: query.get(k) for k in query}) if ids is None else {}
        params = bulk.bulk_check(
            actor=request.user, bulk_list=bulk_list, action=data["action"], params=form.params()
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect(back)
    targets = bulk.bulk_targets(actor=request.user, bulk_list=bulk_list, ids=ids, query=query)
    if data["action"] == bulk.EXPORT:
        response = StreamingHttpResponse(
            bulk_list.export(request.user, targets), content_type="text/csv"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="{bulk_list.name}-{stamp}.csv"'
        return response
    action = bulk_list.actions[data["action"]]
    count = targets.count()
    if not confirmation_given(request):
        facts = [
            (bulk_list.noun.capitalize(), f"{count}"),
            ("Chosen", dict(form.fields["scope"].choices)[data["scope"]]),
            *action.describe(params),
        ]
        confirmation = Confirmation(
            title=action.title or f"{action.label}: {bulk_list.noun}",
            action_label=action.button.format(label=action.label, count=count, noun=bulk_list.noun),
            facts=facts,
            warning=action.warning,
            cancel_url=back,
            danger=action.danger,
        )
        return confirmation_page(request, confirmation)
    job = bulk.bulk_job_create(
        actor=request.user,
        list_name=list_name,
        action=data["action"],
        ids=ids,
        query=query,
        params=form.params(),
    )
    return redirect("bulk_job", pk=job.pk)


@login_required
def bulk_job(request: HttpRequest, pk: int) -> HttpResponse:
    """Where a bulk action stands: its state, its progress, how many rows it reached and changed."""
    job = get_object_or_404(bulk.bulk_jobs_visible_to(request.user), pk=pk)
    bulk_list = bulk.bulk_list_get(job.list_name)
    action = bulk_list.actions.get(job.action)
    context = {
        "job": job,
        "noun": bulk_list.noun,
        "action_label": action.label if action else job.action,
        "facts": action.describe(job.params) if action else [],
        "back": reverse(bulk_list.list_url),
    }
    template = "crm/_bulk_job.html" if request.htmx else "crm/bulk_job.html"
    return render(request, template, context)
