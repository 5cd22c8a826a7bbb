"""The staff pages of campaigns: the list, the comparison, a campaign's page, report and live
progress, its actions (pause, resume, cancel, stop, launch), and the promotion-code check."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from campaigns import services
from campaigns.confirmations import campaign_action_confirmation, campaign_actions_available
from campaigns.delivery import send_progress
from campaigns.forms import PromotionCodeForm
from campaigns.models import Campaign
from campaigns.results import (
    COMPARED_AT_MOST,
    campaign_report,
    campaigns_overview,
    send_unknown_reasons,
)
from campaigns.selectors import promotion_code_status
from campaigns.views.shared import marketing_required
from crm.confirm import confirmation_given, confirmation_page
from crm.roles import Role, user_has_role


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
    campaigns = (
        Campaign.objects.exclude(kind=Campaign.Kind.JOURNEY)
        .prefetch_related("target_segments")
        .order_by("-created_at")[:200]
    )
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
@require_GET
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The sending view: live progress, the actions that drive the campaign, what it targets."""
    campaign = get_object_or_404(
        Campaign.objects.prefetch_related("target_segments", "exclusion_segments", "variants"),
        pk=pk,
    )
    progress = send_progress(campaign=campaign)
    actions = campaign_actions_available(campaign=campaign, progress=progress)
    unknown_reasons = send_unknown_reasons(campaign=campaign) if progress["unknown"] else []
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "progress": progress,
            "actions": actions,
            "unknown_reasons": unknown_reasons,
        },
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
        "resend-unknown": services.campaign_resend_unknown,
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
        done = {
            "rotate-webhook-secret": "New signing secret created; give it to the receiver.",
            "resend-unknown": "The unknown messages are queued to be sent again.",
        }
        messages.success(request, done.get(action, f"Campaign {action} done."))
    return redirect("campaigns:detail", campaign.pk)
