"""Campaign pages for marketers, and the public endpoints messages link to."""

import base64
import hmac
import json
import zoneinfo
from collections.abc import Callable
from functools import wraps

from csp.decorators import csp
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import services
from campaigns.audience import REASON_LABELS, audience_estimate
from campaigns.confirmations import campaign_action_confirmation, campaign_actions_available
from campaigns.delivery import message_context, recommendations_for, send_progress
from campaigns.links import BadLink, click_target, open_send_id, unsubscribe_send_id
from campaigns.models import (
    Campaign,
    MessageEvent,
    Promotion,
    PromotionCode,
    Send,
    Variant,
)
from campaigns.rendering import CompiledVariant, RenderFailed
from campaigns.results import COMPARED_AT_MOST, campaign_report, campaigns_overview
from campaigns.selectors import (
    PREVIEW_PAGE_SIZE,
    audience_estimate_for_settings,
    campaign_audience_customer,
    campaign_audience_search,
    promotion_code_status,
)
from campaigns.tracking import (
    message_event_record,
    provider_events_record,
    send_customer_erased,
    send_unsubscribe,
)
from crm.client_address import client_address
from crm.confirm import confirmation_given, confirmation_page
from crm.forms import ModelMultipleChoiceField
from crm.roles import Role, user_has_role
from privacy.models import Purpose

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def marketing_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not user_has_role(request.user, Role.MARKETING):
            raise PermissionDenied("Only marketing staff and admins work with campaigns.")
        return view(request, *args, **kwargs)

    return wrapped


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "name",
            "goal",
            "channel",
            "kind",
            "target_segments",
            "exclusion_segments",
            "consent_purpose",
            "frequency_cap_count",
            "frequency_cap_days",
            "holdout_percent",
            "send_at",
            "time_zone",
            "attribution_days",
            "allow_repeats",
            "trigger_delay",
            "webhook_url",
            "from_email",
        ]
        field_classes = {
            "target_segments": ModelMultipleChoiceField,
            "exclusion_segments": ModelMultipleChoiceField,
        }
        widgets = {
            "target_segments": forms.CheckboxSelectMultiple,
            "exclusion_segments": forms.CheckboxSelectMultiple,
            "send_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The send time is typed and shown as the wall-clock time of the campaign's time zone.
        if self.instance.send_at and not self.is_bound:
            zone = zoneinfo.ZoneInfo(self.instance.time_zone)
            self.initial["send_at"] = self.instance.send_at.astimezone(zone).replace(tzinfo=None)

    def clean(self):
        cleaned = super().clean()
        send_at, name = cleaned.get("send_at"), cleaned.get("time_zone") or "UTC"
        if send_at is None:
            return cleaned
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.add_error(
                "time_zone", f"Unknown time zone {name!r}; use a name like Europe/Berlin."
            )
            return cleaned
        cleaned["send_at"] = timezone.make_naive(send_at).replace(tzinfo=zone)
        return cleaned


class VariantForm(forms.Form):
    name = forms.CharField(max_length=50, required=False)
    subject = forms.CharField(max_length=300)
    html = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), required=False)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}))
    share = forms.IntegerField(min_value=1, max_value=2**31 - 1, initial=1)


class PromotionForm(forms.Form):
    discount = forms.ChoiceField(choices=Promotion.Discount.choices)
    value = forms.DecimalField(min_value=0, max_digits=10, decimal_places=2)
    code_mode = forms.ChoiceField(choices=Promotion.CodeMode.choices)
    shared_code = forms.CharField(max_length=64, required=False)
    expires_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    redemption_cap = forms.IntegerField(min_value=1, required=False)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _errors_to_form(form: forms.Form, exc: ValidationError) -> None:
    for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
        form.add_error(field if field in form.fields else None, errors)


STEPS = ("audience", "message", "promotion", "schedule", "review")


class PromotionCodeForm(forms.Form):
    code = forms.CharField(max_length=64, label="Promotion code")


@login_required
@require_GET
def promotion_code_check(request: HttpRequest) -> HttpResponse:
    """Whether a code a customer hands over may be redeemed (sales staff at the till, marketers)."""
    if not user_has_role(request.user, Role.SALES, Role.MARKETING):
        raise PermissionDenied("Only sales and marketing staff check promotion codes.")
    form = PromotionCodeForm(request.GET or None)
    status = promotion_code_status(code=form.cleaned_data["code"]) if form.is_valid() else None
    return render(request, "campaigns/promotion_code.html", {"form": form, "status": status})


@marketing_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = Campaign.objects.prefetch_related("target_segments").order_by("-created_at")[:200]
    return render(request, "campaigns/campaign_list.html", {"campaigns": campaigns})


@marketing_required
def campaigns_compare(request: HttpRequest) -> HttpResponse:
    lines = campaigns_overview()
    chart = {
        "labels": [line["campaign"].name for line in lines],
        "conversion": [round(100 * line["totals"]["conversion_rate"], 2) for line in lines],
        "revenue_per_recipient": [line["totals"]["revenue_per_recipient"] for line in lines],
    }
    return render(
        request,
        "campaigns/overview.html",
        {"lines": lines, "chart": chart, "compared_at_most": COMPARED_AT_MOST},
    )


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
                                                            "steps": STEPS})  # fmt: skip


@marketing_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: int, step: str = "audience") -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    if step not in STEPS:
        step = "audience"
    if not campaign.is_editable and step != "review":
        return redirect("campaigns:detail", campaign.pk)
    context = {"campaign": campaign, "step": step, "steps": STEPS}
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


class AudienceEstimateForm(forms.ModelForm):
    """The audience step's settings as the marketer has them on screen, not yet saved."""

    class Meta:
        model = Campaign
        fields = list(services.ESTIMATE_FIELDS)
        field_classes = {
            "target_segments": ModelMultipleChoiceField,
            "exclusion_segments": ModelMultipleChoiceField,
        }


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
    campaign = get_object_or_404(Campaign, pk=pk)
    variant = get_object_or_404(
        Variant, pk=_int_or_none(request.GET.get("variant")) or 0, campaign=campaign
    )
    customer_id = _int_or_none(request.GET.get("customer"))
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
    return render(request, "campaigns/_preview.html", rendered)


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


def preview_render(*, campaign: Campaign, variant: Variant, customer) -> dict:
    promotion = Promotion.objects.filter(campaign=campaign).first()
    code = ""
    if promotion is not None:
        code = promotion.shared_code or (
            PromotionCode.objects.filter(promotion=promotion, customer=customer)
            .values_list("code", flat=True)
            .first()
            or "PREVIEW-CODE"
        )
    context = message_context(
        campaign=campaign,
        customer=customer,
        send_id=None,
        code=code,
        promotion=promotion,
        recommendations=recommendations_for([customer.pk])[customer.pk],
    )
    subject, html, text = CompiledVariant(
        subject=variant.subject, html=variant.html, text=variant.text
    ).render(context)
    return {
        "subject": subject,
        "html": html,
        "text": text,
        "customer": customer,
        "variant": variant,
        "has_promotion": promotion is not None,
        "uses_promotion": any(
            "promotion." in source for source in (variant.subject, variant.html, variant.text)
        ),
    }


@marketing_required
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The sending view: live progress, the actions that drive the campaign, what it targets."""
    campaign = get_object_or_404(
        Campaign.objects.prefetch_related("target_segments", "exclusion_segments", "variants"),
        pk=pk,
    )
    progress = send_progress(campaign=campaign)
    actions = campaign_actions_available(campaign=campaign, progress=progress)
    return render(
        request,
        "campaigns/campaign_detail.html",
        {"campaign": campaign, "progress": progress, "actions": actions},
    )


@marketing_required
@require_GET
def campaign_report_page(request: HttpRequest, pk: int) -> HttpResponse:
    """What the campaign earned: per variant, against the holdout, with charts."""
    campaign = get_object_or_404(Campaign, pk=pk)
    report = campaign_report(campaign=campaign)
    chart = {
        "labels": [v["variant"] for v in report["variants"]] + ["Holdout"],
        "conversion": [round(100 * v["conversion_rate"], 2) for v in report["variants"]]
        + [round(100 * report["holdout"]["conversion_rate"], 2)],
        "revenue_per_recipient": [v["revenue_per_recipient"] for v in report["variants"]]
        + [report["holdout"]["revenue_per_member"]],
        "funnel_labels": ["Sent", "Delivered", "Opened", "Clicked", "Converted"],
        "funnel": [
            report["totals"][k] for k in ("sent", "delivered", "opened", "clicked", "converted")
        ],  # fmt: skip
    }
    return render(
        request,
        "campaigns/campaign_report.html",
        {"campaign": campaign, "report": report, "chart": chart},
    )


@marketing_required
@require_GET
def campaign_progress(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    return render(
        request,
        "campaigns/_progress.html",
        {"campaign": campaign, "progress": send_progress(campaign=campaign)},
    )


@marketing_required
@require_POST
def campaign_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    handlers = {
        "launch": services.campaign_launch,
        "pause": services.campaign_pause,
        "resume": services.campaign_resume,
        "cancel": services.campaign_cancel,
        "stop": services.campaign_stop,
        "rotate-webhook-secret": services.campaign_webhook_secret_rotate,
    }
    if action not in handlers:
        return HttpResponse(status=404)
    available = campaign_actions_available(
        campaign=campaign, progress=send_progress(campaign=campaign)
    )
    if action not in available:
        messages.error(request, f"Status: a {campaign.get_status_display().lower()} campaign "
                                f"cannot {action.replace('-', ' ')} now.")  # fmt: skip
        return redirect("campaigns:detail", campaign.pk)
    confirmation = campaign_action_confirmation(campaign=campaign, action=action)
    if confirmation is not None and not confirmation_given(request):
        return confirmation_page(request, confirmation)
    try:
        handlers[action](campaign=campaign, actor=request.user)
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            messages.error(request, f"{field}: {'; '.join(errors)}")
    else:
        done = {"rotate-webhook-secret": "New signing secret created; give it to the receiver."}
        messages.success(request, done.get(action, f"Campaign {action} done."))
    return redirect("campaigns:detail", campaign.pk)


# Public endpoints: no login, authenticated by signatures or a shared secret.


@csrf_exempt  # RFC 8058: mail providers POST the one-click unsubscribe without a CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation page (link scanners must not unsubscribe anyone); POST
    unsubscribes at once, whether from the page's button or a provider's one-click request."""
    try:
        send_id = unsubscribe_send_id(token)
    except BadLink as exc:
        return render(request, "campaigns/unsubscribe.html", {"error": str(exc)}, status=400)
    send = Send.objects.select_related("campaign", "customer").filter(pk=send_id).first()
    if send is None:
        return render(
            request,
            "campaigns/unsubscribe.html",
            {"error": "This message no longer exists."},
            status=404,
        )
    if send_customer_erased(send):
        # The person was erased: their addresses are suppressed; nothing to record or show.
        return render(request, "campaigns/unsubscribe.html", {"erased": True})
    if request.method == "POST":
        send_unsubscribe(send=send, ip_address=client_address(request))
        return render(request, "campaigns/unsubscribe.html", {"done": True, "send": send})
    purpose = Purpose.objects.filter(pk=send.campaign.purpose_code).first()
    return render(request, "campaigns/unsubscribe.html",
                  {"send": send, "token": token, "purpose": purpose})  # fmt: skip


@require_GET
def track_open(request: HttpRequest, token: str) -> HttpResponse:
    try:
        send_id = open_send_id(token.removesuffix(".gif"))
    except BadLink:
        return HttpResponse(PIXEL, content_type="image/gif")
    send = (
        Send.objects.select_related("customer").filter(pk=send_id, status=Send.Status.SENT).first()
    )
    if send is not None and not send_customer_erased(send):
        message_event_record(send=send, kind=MessageEvent.Kind.OPEN)
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def track_click(request: HttpRequest, token: str) -> HttpResponse:
    """Record the click and go on to the link, which must be signed by us (no open redirect);
    an erased person's click goes on to the link and is not recorded."""
    try:
        send_id, url = click_target(token)
    except BadLink:
        return HttpResponse("This link is not valid.", status=400, content_type="text/plain")
    send = Send.objects.select_related("customer", "variant").filter(pk=send_id).first()
    if send is None:
        return HttpResponse("This link is not valid.", status=404, content_type="text/plain")
    if send.variant is not None and not _link_in_message(send.variant, url):
        return HttpResponse("This link is not valid.", status=400, content_type="text/plain")
    if not send_customer_erased(send):
        message_event_record(send=send, kind=MessageEvent.Kind.CLICK, url=url)
    return HttpResponseRedirect(url)


def _link_in_message(variant: Variant, url: str) -> bool:
    """Whether the variant's HTML links to the URL, literally or as a recommended product."""
    from campaigns.links import links_in

    shop = f"{settings.CAMPAIGNS_SITE_URL.rstrip('/')}/shop/"
    return url in links_in(variant.html) or url.startswith(shop)


@csrf_exempt
@require_POST
def provider_events(request: HttpRequest) -> JsonResponse:
    """Bounces and complaints from the email provider: Authorization: Bearer <shared secret>.

    Body: {"events": [{"type": "bounce"|"complaint", "message_id": "<...>", "detail": "..."}]}.
    """
    secret = settings.CAMPAIGNS_PROVIDER_SECRET
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return JsonResponse({"detail": "authentication failed"}, status=401)
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"detail": "the body is not valid JSON"}, status=400)
    items = payload.get("events") if isinstance(payload, dict) else None
    result = provider_events_record(items)
    status = 400 if result["errors"] and not result["recorded"] else 200
    return JsonResponse(result, status=status)
