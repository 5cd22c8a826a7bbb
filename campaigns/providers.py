"""Email providers (Amazon SES, Mailgun, Postmark, SendGrid, ...) through django-anymail: their
tracking webhooks, verified as anymail verifies them, recorded on the sends set-based.

Each provider's webhook is anymail's own view (it checks the provider's signature, or the
basic-auth secret `ANYMAIL_WEBHOOK_SECRET` for those that sign nothing, and parses the
provider's payload into anymail's normalized events). The events of one request are then
recorded in one batch by `campaigns.tracking.provider_events_apply`: delivered, bounced,
complained, opened, clicked and unsubscribed, matched by the provider's message id (recorded
on the send when the provider accepted it) or else the send id the message carried as
metadata. Anymail's `tracking` signal is still sent for each event, for any other listener.

A provider whose webhook is not configured answers 404; one that would accept unsigned posts
(no basic-auth secret, and no signing key for a provider that signs) answers 404 as well:
a webhook anyone could post to would let anyone withdraw anyone's consent.
"""

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from campaigns.models import MessageEvent
from campaigns.tracking import ProviderEvent, provider_events_apply

# The metadata key that carries the send id in every message sent through a provider.
SEND_METADATA = "crm_send"

# anymail's normalized event types -> what is recorded on the send.
EVENT_KINDS = {
    "delivered": MessageEvent.Kind.DELIVERED,
    "bounced": MessageEvent.Kind.BOUNCE,
    "complained": MessageEvent.Kind.COMPLAINT,
    "opened": MessageEvent.Kind.OPEN,
    "clicked": MessageEvent.Kind.CLICK,
    "unsubscribed": MessageEvent.Kind.UNSUBSCRIBE,
}


def _tracking_views() -> dict[str, type]:
    from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
    from anymail.webhooks.brevo import BrevoTrackingWebhookView
    from anymail.webhooks.mailgun import MailgunTrackingWebhookView
    from anymail.webhooks.mailjet import MailjetTrackingWebhookView
    from anymail.webhooks.postmark import PostmarkTrackingWebhookView
    from anymail.webhooks.resend import ResendTrackingWebhookView
    from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
    from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView

    return {
        "amazon_ses": AmazonSESTrackingWebhookView,
        "brevo": BrevoTrackingWebhookView,
        "mailgun": MailgunTrackingWebhookView,
        "mailjet": MailjetTrackingWebhookView,
        "postmark": PostmarkTrackingWebhookView,
        "resend": ResendTrackingWebhookView,
        "sendgrid": SendGridTrackingWebhookView,
        "sparkpost": SparkPostTrackingWebhookView,
    }


PROVIDERS = tuple(sorted(_tracking_views()))


def provider_event_from_anymail(event) -> ProviderEvent | None:
    """The event to record for one of anymail's normalized events (None: not one we record)."""
    kind = EVENT_KINDS.get(event.event_type)
    if kind is None:
        return None
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    raw_send = str(metadata.get(SEND_METADATA) or "")
    detail = " ".join(
        str(part) for part in (event.reject_reason, event.description, event.mta_response) if part
    )
    return ProviderEvent(
        kind=kind,
        message_id=str(event.message_id or ""),
        send_id=int(raw_send) if raw_send.isdigit() and len(raw_send) < 19 else None,
        detail=detail[:300],
        url=str(event.click_url or "") if kind == MessageEvent.Kind.CLICK else "",
    )


def provider_tracking_record(events) -> int:
    """Record a webhook request's anymail events in one batch; returns how many matched a send."""
    ours = [e for e in (provider_event_from_anymail(event) for event in events) if e is not None]
    return sum(1 for row in provider_events_apply(events=ours) if row is not None)


class _Collected:
    """Stands in for anymail's signal during one request: keeps the events it is sent."""

    def __init__(self):
        self.events: list = []

    def send(self, sender, event, esp_name, **kwargs):
        self.events.append(event)


def _verifies(view) -> bool:
    """Whether the view refuses a post nobody signed: a basic-auth secret, or a signing key
    (Mailgun's webhook signing key, SendGrid's verification key, ...)."""
    if getattr(view, "basic_auth", None):
        return True
    return not getattr(view, "warn_if_no_basic_auth", True)


def provider_webhook(provider: str):
    """The tracking webhook view of one provider."""
    from anymail.signals import tracking

    base = _tracking_views()[provider]

    class TrackingView(base):
        def post(self, request, *args, **kwargs):
            self.signal = _Collected()  # this request's events, recorded together below
            response = super().post(request, *args, **kwargs)
            if response.status_code == 200 and self.signal.events:
                provider_tracking_record(self.signal.events)
                for event in self.signal.events:
                    tracking.send(sender=base, event=event, esp_name=self.esp_name)
            return response

    view = TrackingView.as_view()

    @csrf_exempt
    def webhook(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            configured = _verifies(TrackingView())
        except ImproperlyConfigured:
            configured = False
        if not configured:
            return HttpResponse(
                f"The {provider} webhook is not configured.", status=404, content_type="text/plain"
            )
        return view(request, *args, **kwargs)

    webhook.__name__ = f"{provider}_tracking_webhook"
    return webhook
