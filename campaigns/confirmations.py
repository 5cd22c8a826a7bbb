"""Which campaign actions are possible now, and what a marketer sees before an irreversible one
(launch, cancel, stop, sending the unknown messages again): the summary the confirmation page shows (crm/confirm.py)."""

import zoneinfo

from django.urls import reverse
from django.utils import timezone

from campaigns.audience import audience_estimate
from campaigns.models import Campaign, Channel, Promotion, Send
from crm.confirm import Confirmation
from crm.templatetags.numbers import money

# Launching sends messages, cancelling or stopping ends a campaign for good and sending the
# unknown ones again may send someone a second message; pausing and resuming can be undone, so
# they act at once.
CONFIRMED_ACTIONS = {"launch", "cancel", "stop", "resend-unknown"}


def campaign_actions_available(*, campaign: Campaign, progress: dict[str, int]) -> set[str]:
    """The actions a campaign in this state can take: none that would do nothing (Pause or
    Cancel once every message has gone)."""
    status = campaign.status
    available: set[str] = set()
    triggered = campaign.kind == Campaign.Kind.TRIGGERED
    # A broadcast still has work to do while messages remain, or before its fan-out made any.
    work_left = triggered or progress["remaining"] > 0 or progress["recipients"] == 0
    if status in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        available |= {"launch", "cancel"}
    if status == Campaign.Status.SENDING and work_left:
        available |= {"pause", "cancel"}
    if status == Campaign.Status.PAUSED:
        available |= {"resume", "cancel"}
    if triggered and status in (Campaign.Status.SENDING, Campaign.Status.PAUSED):
        available.add("stop")
    if campaign.channel == Channel.WEBHOOK:
        available.add("rotate-webhook-secret")
    if progress.get("unknown") and status in (
        Campaign.Status.SENDING,
        Campaign.Status.PAUSED,
        Campaign.Status.SENT,
    ):
        available.add("resend-unknown")
    return available


def _promotion_text(campaign: Campaign) -> str:
    promotion = Promotion.objects.filter(campaign=campaign).first()
    if promotion is None:
        return "None"
    if promotion.discount == Promotion.Discount.PERCENT:
        amount = f"{promotion.value.normalize():f}% off"
    else:
        amount = f"{money(promotion.value)} off"
    code = (
        f"shared code {promotion.shared_code}"
        if promotion.code_mode == "shared"
        else "a unique code per recipient"
    )
    expiry = f", expires {promotion.expires_at:%d %b %Y}" if promotion.expires_at else ""
    return f"{amount}, {code}{expiry}"


def _send_time_text(campaign: Campaign) -> str:
    if campaign.kind == Campaign.Kind.TRIGGERED:
        return "Whenever a customer enters the target segments"
    if campaign.send_at and campaign.send_at > timezone.now():
        local = timezone.localtime(campaign.send_at, zoneinfo.ZoneInfo(campaign.time_zone))
        return f"{local:%d %b %Y %H:%M} ({campaign.time_zone})"
    return "Now, as soon as you confirm"


def campaign_launch_summary(*, campaign: Campaign) -> list[tuple[str, str]]:
    """What a launch does: who gets which message, from whom, with which promotion, when."""
    estimate = audience_estimate(campaign, now=timezone.now())
    about = "about " if estimate.get("holdout_estimated") else ""
    variants = list(campaign.variants.all())
    total_share = sum(v.share for v in variants) or 1
    split = "; ".join(
        f"{v.name}: {round(100 * v.share / total_share)}% (“{v.subject}”)" for v in variants
    )
    excluded = sum(estimate["excluded"].values())
    return [
        ("Campaign", campaign.name),
        ("Target segments", ", ".join(s.name for s in campaign.target_segments.all()) or "none"),
        (
            "Exclusion segments",
            ", ".join(s.name for s in campaign.exclusion_segments.all()) or "none",
        ),
        (
            "Audience after exclusions",
            f"{about}{estimate['recipients']:,} recipients of {estimate['targeted']:,} targeted"
            f" ({excluded:,} excluded)",
        ),
        (
            "Holdout",
            f"{campaign.holdout_percent:g}% ({about}{estimate['holdout']:,} customers get nothing)",
        ),
        ("Variants and split", split or "none"),
        ("Channel", campaign.get_channel_display()),
        ("Sender", campaign.from_email or "the default sender address"),
        ("Promotion", _promotion_text(campaign)),
        ("Send time", _send_time_text(campaign)),
    ]


def campaign_action_confirmation(*, campaign: Campaign, action: str) -> Confirmation | None:
    """The confirmation an action needs, or None when it acts at once."""
    if action not in CONFIRMED_ACTIONS:
        return None
    back = reverse("campaigns:detail", args=[campaign.pk])
    if action == "launch":
        scheduled = campaign.send_at and campaign.send_at > timezone.now()
        return Confirmation(
            title=f"Launch “{campaign.name}”?",
            action_label="Schedule the campaign" if scheduled else "Send the campaign now",
            facts=campaign_launch_summary(campaign=campaign),
            warning="Messages that have gone out cannot be called back.",
            cancel_url=reverse("campaigns:edit", args=[campaign.pk, "review"]),
            danger=False,
        )
    if action == "resend-unknown":
        unknown = Send.objects.filter(campaign=campaign, status=Send.Status.UNKNOWN)
        reasons = sorted(set(unknown.values_list("reason", flat=True)))
        count = unknown.count()
        return Confirmation(
            title=f"Send the {count:,} unknown message{'s' if count != 1 else ''} of "
            f"“{campaign.name}” again?",
            action_label="Send the unknown ones again",
            facts=[
                ("Campaign", campaign.name),
                ("Messages whose fate is unknown", f"{count:,}"),
                ("Why", "; ".join(reasons) or "not recorded"),
            ],
            warning=(
                "These messages were being handed over to the mail server or provider when "
                "sending stopped, and no answer came. Some of them may have arrived: those "
                "recipients will get the message twice. Consent is checked again before each "
                "one goes."
            ),
            cancel_url=back,
        )
    verb = "Cancel" if action == "cancel" else "Stop"
    return Confirmation(
        title=f"{verb} “{campaign.name}”?",
        action_label=f"{verb} the campaign",
        facts=[("Campaign", campaign.name), ("Status now", campaign.get_status_display())],
        warning="Messages not yet sent will not be sent, and the campaign cannot be restarted.",
        cancel_url=back,
    )
