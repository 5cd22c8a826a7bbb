"""The webhook channel: one signed JSON POST per recipient to a real HTTP server on loopback."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from campaigns.models import Campaign, Channel, PromotionCode, Send
from campaigns.services import promotion_set
from privacy.services import consent_withdraw
from tests.campaigns.factories import CampaignFactory, VariantFactory

pytestmark = pytest.mark.django_db

SECRET = "shop-shared-secret"


class Receiver:
    """An HTTP server in a thread that keeps every POST and answers with `status`."""

    def __init__(self):
        self.requests: list = []  # (headers, body)
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers, body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/crm-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _headers, body in self.requests]


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def webhook_campaign(settings, segment, receiver, marketing_user):
    settings.CAMPAIGNS_WEBHOOK_SECRET = SECRET
    campaign = CampaignFactory(channel=Channel.WEBHOOK, webhook_url=receiver.url)
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    promotion_set(campaign=campaign, actor=marketing_user, discount="amount", value=5)
    return campaign


def _verify(headers, body: bytes) -> bool:
    """What the receiving shop does: recompute the HMAC over "<timestamp>.<body>"."""
    signed = headers["X-CRM-Timestamp"].encode() + b"." + body
    expected = hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-CRM-Signature"])


def test_every_recipient_is_posted_once_as_signed_json(
    webhook_campaign, consenting_members, receiver, launch
):
    launch(webhook_campaign)

    assert len(receiver.requests) == len(consenting_members)
    assert all(_verify(headers, body) for headers, body in receiver.requests)
    assert [h["Idempotency-Key"] for h, _b in receiver.requests] == [
        f"send-{p['send_id']}" for p in receiver.payloads()
    ]
    codes = dict(
        PromotionCode.objects.filter(promotion__campaign=webhook_campaign).values_list(
            "customer_id", "code"
        )
    )
    by_customer = {p["customer"]["id"]: p for p in receiver.payloads()}
    assert sorted(by_customer) == sorted(c.pk for c in consenting_members)
    for customer in consenting_members:
        payload = by_customer[customer.pk]
        assert payload["customer"]["email"] == customer.email
        assert payload["variant"] == "A"
        assert payload["promotion_code"] == codes[customer.pk]
        assert payload["subject"] == f"Hello {customer.first_name}"
    assert Campaign.objects.get(pk=webhook_campaign.pk).status == Campaign.Status.SENT


def test_tampered_body_does_not_verify(webhook_campaign, consenting_members, receiver, launch):
    launch(webhook_campaign)
    headers, body = receiver.requests[0]

    assert not _verify(headers, body.replace(b'"A"', b'"B"'))


def test_customer_who_opted_out_of_data_sale_is_not_posted(
    webhook_campaign, consenting_members, receiver, launch
):
    opted_out = consenting_members[0]
    consent_withdraw(customer=opted_out, purpose="data_sale", source="preference_centre")

    launch(webhook_campaign)

    posted = {p["customer"]["id"] for p in receiver.payloads()}
    assert opted_out.pk not in posted and len(posted) == len(consenting_members) - 1
    send = Send.objects.get(campaign=webhook_campaign, customer=opted_out)
    assert (send.status, send.reason) == (Send.Status.EXCLUDED, "do_not_sell")


def test_opt_out_during_the_send_stops_the_post(
    webhook_campaign,
    consenting_members,
    receiver,
    marketing_user,
    django_capture_on_commit_callbacks,
):
    from campaigns.services import campaign_dispatch, campaign_launch

    with django_capture_on_commit_callbacks(execute=False):
        campaign_launch(campaign=webhook_campaign, actor=marketing_user)
    late = consenting_members[1]
    consent_withdraw(customer=late, purpose="data_sale", source="preference_centre")

    campaign_dispatch(campaign=Campaign.objects.get(pk=webhook_campaign.pk))

    assert late.pk not in {p["customer"]["id"] for p in receiver.payloads()}
    assert Send.objects.get(campaign=webhook_campaign, customer=late).status == Send.Status.SKIPPED


def test_receiver_error_marks_the_send_failed_with_the_status(
    webhook_campaign, consenting_members, receiver, launch
):
    receiver.status = 503

    launch(webhook_campaign)

    reasons = set(
        Send.objects.filter(campaign=webhook_campaign).values_list("status", "reason").distinct()
    )
    assert reasons == {(Send.Status.FAILED, "Webhook answered 503")}


def test_webhook_campaign_needs_a_url(api_client_for, marketing_user):
    response = api_client_for(marketing_user).post(
        "/api/campaigns/", {"name": "Shop sync", "channel": "webhook"}, format="json"
    )

    assert response.status_code == 400
    assert "webhook_url" in response.json()
