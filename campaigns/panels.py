"""What campaigns adds to the customer page: messages received, opened and clicked."""

from collections.abc import Iterable

from django.urls import reverse

from campaigns.models import MessageEvent, Send
from crm.roles import Role
from customers.models import Customer
from customers.registry import TimelineEntry


def customer_timeline(customer: Customer, limit: int) -> Iterable[TimelineEntry]:
    sends = (
        Send.objects.filter(customer=customer, status=Send.Status.SENT)
        .select_related("campaign", "variant")
        .order_by("-sent_at")[:limit]
    )
    for send in sends:
        yield TimelineEntry(
            at=send.sent_at,
            kind="campaign",
            title=f"Received “{send.campaign.name}”",
            detail=f"Variant {send.variant.name}" if send.variant_id else "",
            url=reverse("campaigns:detail", args=[send.campaign_id]),
            url_roles=(Role.MARKETING,),
        )
    events = (
        MessageEvent.objects.filter(send__customer=customer)
        .select_related("send__campaign")
        .order_by("-at")[:limit]
    )
    for event in events:
        yield TimelineEntry(
            at=event.at,
            kind="campaign",
            title=f"{event.get_kind_display()} “{event.send.campaign.name}”",
            detail=event.url,
            url=reverse("campaigns:detail", args=[event.send.campaign_id]),
            url_roles=(Role.MARKETING,),
        )
