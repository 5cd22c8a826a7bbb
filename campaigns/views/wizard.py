"""The campaign editor, step by step: audience (with its live size), message (variants and the
preview), promotion, schedule, review."""

from csp.decorators import csp
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import services
from campaigns.audience import REASON_LABELS, audience_estimate
from campaigns.forms import AudienceEstimateForm, CampaignForm, PromotionForm, VariantForm
from campaigns.models import CAMPAIGN_SETTINGS_BY_STEP, Campaign, Promotion, Variant
from campaigns.previews import preview_render
from campaigns.rendering import RenderFailed
from campaigns.selectors import (
    PREVIEW_PAGE_SIZE,
    audience_estimate_for_settings,
    campaign_audience_customer,
    campaign_audience_search,
)
from campaigns.views.shared import _errors_to_form, _int_or_none, marketing_required
from privacy.models import Purpose

STEPS = ("audience", "message", "promotion", "schedule", "review")


@marketing_required
@require_http_methods(["GET", "POST"])
def campaign_create(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None, initial={"consent_purpose": Purpose.EMAIL_MARKETING})
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            campaign = services.campaign_create(actor=request.user, **data)
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            return redirect("campaigns:edit", campaign.pk, "message")
    return render(request, "campaigns/campaign_form.html", {"form": form, "step": "audience",
        "steps": STEPS, "step_fields": CAMPAIGN_SETTINGS_BY_STEP["audience"]})  # fmt: skip


@marketing_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int, step: str = "audience") -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    if step not in STEPS:
        step = "audience"
    if not campaign.is_editable and step != "review":
        return redirect("campaigns:detail", campaign.pk)
    context = {"campaign": campaign, "step": step, "steps": STEPS,
               "step_fields": CAMPAIGN_SETTINGS_BY_STEP.get(step, ())}  # fmt: skip
    if step in ("audience", "schedule"):
        form = CampaignForm(request.POST or None, instance=campaign)
        if request.method == "POST" and form.is_valid():
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            if "time_zone" in changes and form.cleaned_data.get("send_at"):
                changes["send_at"] = form.cleaned_data["send_at"]  # the same wall-clock time
            try:
                services.campaign_update(campaign=campaign, actor=request.user, **changes)
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                following = STEPS[STEPS.index(step) + 1]
                return redirect("campaigns:edit", campaign.pk, following)
        context["form"] = form
    elif step == "message" and request.htmx and request.htmx.target == PREVIEW_PICKER:
        return _preview_picker(request, campaign)
    elif step == "message":
        # ?variant=<id> (or the posted variant_id) edits that variant; otherwise the form adds one.
        editing = campaign.variants.filter(
            pk=_int_or_none(request.POST.get("variant_id") or request.GET.get("variant"))
        ).first()
        if request.method == "POST" and "delete_variant" in request.POST:
            doomed = campaign.variants.filter(pk=_int_or_none(request.POST["delete_variant"]))
            for variant in doomed:
                services.variant_delete(variant=variant, actor=request.user)
                messages.success(request, f"Variant {variant.name} removed.")
            return redirect("campaigns:edit", campaign.pk, "message")
        initial = {f: getattr(editing, f) for f in VariantForm.base_fields} if editing else None
        form = VariantForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                if editing is not None:
                    changes = {name: form.cleaned_data[name] for name in form.changed_data}
                    if "name" in changes and not changes["name"].strip():
                        del changes["name"]
                    services.variant_update(variant=editing, actor=request.user, **changes)
                else:
                    services.variant_create(
                        campaign=campaign, actor=request.user, **form.cleaned_data
                    )
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                messages.success(request, "Variant saved." if editing else "Variant added.")
                return redirect("campaigns:edit", campaign.pk, "message")
        context["form"] = form
        context["editing"] = editing
        context["variants"] = campaign.variants.all()
        context["preview_page"] = campaign_audience_search(
            campaign=campaign, user=request.user, term=""
        )
        context["preview_page_size"] = PREVIEW_PAGE_SIZE
        context["term"] = ""
    elif step == "promotion":
        promotion = Promotion.objects.filter(campaign=campaign).first()
        initial = {}
        if promotion:
            initial = {f: getattr(promotion, f) for f in PromotionForm.base_fields}
        form = PromotionForm(request.POST or None, initial=initial)
        if request.method == "POST" and "remove" in request.POST:
            services.promotion_remove(campaign=campaign, actor=request.user)
            return redirect("campaigns:edit", campaign.pk, "schedule")
        if request.method == "POST" and form.is_valid():
            try:
                services.promotion_set(campaign=campaign, actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                return redirect("campaigns:edit", campaign.pk, "schedule")
        context["form"] = form
        context["promotion"] = promotion
    else:
        context["problems"] = services.campaign_problems(campaign)
        context["warnings"] = services.campaign_warnings(campaign)
        context["estimate"] = _estimate(campaign)
    return render(request, "campaigns/campaign_form.html", context)


PREVIEW_PICKER = "preview-customer-picker"


def _preview_picker(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    """The preview's customer picker (htmx fragment of the message step): a page of the
    campaign's audience matching what the marketer types."""
    term = request.GET.get("q", "").strip()[:100]
    page = campaign_audience_search(
        campaign=campaign, user=request.user, term=term, cursor=request.GET.get("after", "")
    )
    return render(
        request,
        "campaigns/_preview_customers.html",
        {
            "campaign": campaign,
            "preview_page": page,
            "preview_page_size": PREVIEW_PAGE_SIZE,
            "term": term,
        },
    )


def _labelled(estimate: dict) -> dict:
    estimate["excluded_labelled"] = [
        (REASON_LABELS.get(r, r), n) for r, n in sorted(estimate["excluded"].items())
    ]
    return estimate


def _estimate(campaign: Campaign) -> dict:
    return _labelled(audience_estimate(campaign, now=timezone.now()))


@marketing_required
@require_GET
def campaign_audience_size(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    """The live audience size after exclusions (htmx fragment): for the settings in the query
    string as the marketer changes them, or for the saved campaign when there are none."""
    campaign = get_object_or_404(Campaign, pk=pk) if pk is not None else None
    if campaign is not None and "channel" not in request.GET:
        return render(request, "campaigns/_audience_size.html", {"estimate": _estimate(campaign)})
    form = AudienceEstimateForm(request.GET)
    if not form.is_valid():
        return render(request, "campaigns/_audience_size.html", {"form_errors": form.errors})
    changes = {name: form.cleaned_data[name] for name in services.ESTIMATE_FIELDS}
    try:
        estimate = audience_estimate_for_settings(campaign=campaign, changes=changes)
    except ValidationError as exc:
        return render(request, "campaigns/_audience_size.html", {"form_errors": exc.message_dict})
    return render(request, "campaigns/_audience_size.html", {"estimate": _labelled(estimate)})


class PreviewRefused(Exception):
    """A preview that cannot be shown, with the message and status to answer."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _preview_subject(request: HttpRequest, pk: int) -> tuple[Campaign, Variant, object]:
    """The campaign, variant and audience member a preview is asked for; Http404 or a 400 with
    the field at fault otherwise."""
    params = request.POST if request.method == "POST" else request.GET
    campaign = get_object_or_404(Campaign, pk=pk)
    variant = get_object_or_404(
        Variant, pk=_int_or_none(params.get("variant")) or 0, campaign=campaign
    )
    customer_id = _int_or_none(params.get("customer"))
    if customer_id is None:
        raise PreviewRefused("customer: choose a customer to preview.", 400)
    customer = campaign_audience_customer(
        campaign=campaign, user=request.user, customer_id=customer_id
    )
    if customer is None:
        raise PreviewRefused("customer: not in the campaign's audience.", 404)
    return campaign, variant, customer


@marketing_required
@require_GET
def campaign_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The message as one chosen customer would get it: subject and text as text, the HTML as
    a real rendering in a sandboxed frame (campaign_preview_frame), never in this page."""
    try:
        campaign, variant, customer = _preview_subject(request, pk)
        rendered = preview_render(campaign=campaign, variant=variant, customer=customer)
    except PreviewRefused as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    except RenderFailed as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    query = urlencode({"variant": variant.pk, "customer": customer.pk})
    rendered["frame_url"] = f"{reverse('campaigns:preview_frame', args=[campaign.pk])}?{query}"
    rendered["campaign"] = campaign
    return render(request, "campaigns/_preview.html", rendered)


@marketing_required
@require_POST
def campaign_test_send_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Send the previewed message, written for the chosen customer, to the signed-in marketer's
    own address (not a send of the campaign). htmx gets the outcome as a fragment; a plain form
    goes back to the message step with it."""
    status, outcome = 200, {}
    try:
        campaign, variant, customer = _preview_subject(request, pk)
        address = services.campaign_test_send(
            campaign=campaign, variant=variant, customer=customer, actor=request.user
        )
        outcome = {"sent_to": address, "customer": customer}
    except PreviewRefused as exc:
        status, outcome = exc.status, {"error": str(exc)}
    except ValidationError as exc:
        field, errors = next(iter(exc.message_dict.items()))
        status, outcome = 400, {"error": f"{field}: {errors[0]}"}
    if request.headers.get("HX-Request"):
        return render(request, "campaigns/_test_send.html", outcome, status=status)
    if "error" in outcome:
        messages.error(request, f"The test message was not sent. {outcome['error']}")
    else:
        messages.success(request, f"Test message sent to {outcome['sent_to']}.")
    return redirect("campaigns:edit", pk, "message")


# The message's HTML is the author's markup around the customer's escaped data: shown to staff
# as a document of its own that can run nothing, reach nothing and touch nothing of the CRM.
# `sandbox` without allow-scripts and allow-same-origin gives it an opaque origin even when the
# address is opened on its own; images and fonts only from the message itself (no request to
# hosts the message names); inline styles, as e-mail HTML is styled that way.
PREVIEW_FRAME_POLICY = {
    "default-src": ["'none'"],
    "style-src": ["'unsafe-inline'"],
    "img-src": ["data:"],
    "font-src": ["data:"],
    "form-action": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'self'"],
    "sandbox": [True],
}


@marketing_required
@require_GET
@xframe_options_sameorigin
@csp(PREVIEW_FRAME_POLICY)
def campaign_preview_frame(request: HttpRequest, pk: int) -> HttpResponse:
    """The message's HTML as one chosen customer would get it, for the preview's frame."""
    try:
        campaign, variant, customer = _preview_subject(request, pk)
        rendered = preview_render(campaign=campaign, variant=variant, customer=customer)
    except PreviewRefused as exc:
        return HttpResponse(str(exc), status=exc.status, content_type="text/plain")
    except RenderFailed as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    response = HttpResponse(rendered["html"], content_type="text/html; charset=utf-8")
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "private, no-store"
    return response
