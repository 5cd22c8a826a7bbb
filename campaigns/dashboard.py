"""The marketing dashboard's campaign cards: the latest campaigns' results as rates, and the
sends scheduled next. Registered with crm.dashboard from CampaignsConfig.ready()."""

from django.http import HttpRequest
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.results import campaigns_compared

RESULTS_SHOWN = 5
UPCOMING_SHOWN = 6


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def dashboard_campaign_results(request: HttpRequest) -> dict:
    """The latest launched campaigns with their delivery, open, click and conversion rates and
    revenue: three statements however many campaigns are shown."""
    launched = list(
        Campaign.objects.filter(launched_at__isnull=False).order_by("-launched_at", "-id")[
            :RESULTS_SHOWN
        ]
    )
    lines = []
    for line in campaigns_compared(campaigns=launched):
        totals = line["totals"]
        lines.append(
            {
                "campaign": line["campaign"],
                "sent": totals["sent"],
                "open_rate": _rate(totals["opened"], totals["delivered"]),
                "click_rate": _rate(totals["clicked"], totals["delivered"]),
                "conversion_rate": _rate(totals["converted"], totals["audience"]),
                "revenue": totals["revenue"],
                "uplift": line["uplift"],
            }
        )
    return {"lines": lines}


def dashboard_upcoming_sends(request: HttpRequest) -> dict:
    """Campaigns scheduled to send, soonest first, with their target segments and the most
    people they can reach (the segments' sizes before exclusions): two statements."""
    upcoming = list(
        Campaign.objects.filter(status=Campaign.Status.SCHEDULED)
        .order_by("send_at", "id")
        .prefetch_related("target_segments")[:UPCOMING_SHOWN]
    )
    now = timezone.now()
    for campaign in upcoming:
        segments = list(campaign.target_segments.all())
        campaign.segment_names = [segment.name for segment in segments]
        campaign.reach_at_most = sum(segment.member_count for segment in segments)
        campaign.is_late = campaign.send_at is not None and campaign.send_at < now
    return {"campaigns": upcoming}
