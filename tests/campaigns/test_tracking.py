"""Unsubscribe, tracking links, the provider webhook, attribution and the pages."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from campaigns.links import click_url, open_url, unsubscribe_token
from campaigns.models import MessageEvent, Send
from campaigns.results import campaign_report
from customers.models import Event
from privacy.models import ConsentState
from tests.customers.factories import PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(campaign, consenting_members, launch):
    launch(campaign)
    return (
        Send.objects.filter(campaign=campaign, status=Send.Status.SENT)
        .select_related("customer")
        .first()
    )


def test_every_email_carries_one_click_unsubscribe_headers(sent):
    message = mail.outbox[0]

    assert message.extra_headers["List-Unsubscribe"].startswith("<http://testserver/campaigns/u/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_unsubscribe_get_only_shows_the_page(client, sent):
    response = client.get(f"/campaigns/u/{unsubscribe_token(send_id=sent.pk)}/")

    assert response.status_code == 200
    assert (
        ConsentState.objects.get(customer=sent.customer, purpose="email_marketing").state
        == "granted"
    )


def test_unsubscribe_post_withdraws_consent_at_once_without_login(client, sent):
    response = client.post(f"/campaigns/u/{unsubscribe_token(send_id=sent.pk)}/")

    assert response.status_code == 200
    assert (
        ConsentState.objects.get(customer=sent.customer, purpose="email_marketing").state
        == "withdrawn"
    )
    assert sent.events.filter(kind=MessageEvent.Kind.UNSUBSCRIBE).exists()


def test_tampered_unsubscribe_link_is_refused(client, sent):
    response = client.post(f"/campaigns/u/{unsubscribe_token(send_id=sent.pk)}x/")

    assert response.status_code == 400


def test_open_pixel_records_an_event_on_the_customer(client, sent):
    response = client.get(open_url(send_id=sent.pk).removeprefix("http://testserver"))

    assert response["Content-Type"] == "image/gif"
    assert Event.objects.filter(customer=sent.customer, type="email_open").exists()


def test_click_redirects_only_to_a_link_of_the_message(client, sent):
    good = client.get(
        click_url(send_id=sent.pk, url="https://shop.example/sale").removeprefix(
            "http://testserver"
        )
    )
    bad = client.get(
        click_url(send_id=sent.pk, url="https://evil.example/").removeprefix("http://testserver")
    )
    forged = client.get("/campaigns/t/c/forged-token/")

    assert good.status_code == 302 and good["Location"] == "https://shop.example/sale"
    assert bad.status_code == 400
    assert forged.status_code == 400


def test_provider_webhook_needs_the_shared_secret(client, sent):
    body = {"events": [{"type": "bounce", "message_id": sent.provider_message_id}]}

    refused = client.post("/campaigns/hooks/provider/", body, content_type="application/json")
    accepted = client.post("/campaigns/hooks/provider/", body, content_type="application/json",
                           headers={"Authorization": "Bearer provider-secret"})  # fmt: skip

    assert refused.status_code == 401
    assert accepted.json()["recorded"] == 1


def test_purchase_in_the_window_is_attributed_to_the_campaign(sent):
    PurchaseFactory(customer=sent.customer, amount=Decimal("80.00"),
                    purchased_at=timezone.now() + dt.timedelta(hours=1))  # fmt: skip
    PurchaseFactory(customer=sent.customer, amount=Decimal("999.00"),
                    purchased_at=timezone.now() - dt.timedelta(days=30))  # fmt: skip

    report = campaign_report(campaign=sent.campaign)

    assert report["totals"]["converted"] == 1
    assert report["totals"]["revenue"] == 80.0


def test_campaign_pages_answer_marketing_and_refuse_sales(client, sent, marketing_user, sales_user):
    client.force_login(sales_user)
    assert client.get(f"/campaigns/{sent.campaign_id}/").status_code == 403
    client.force_login(marketing_user)
    for url in ("/campaigns/", "/campaigns/overview/", f"/campaigns/{sent.campaign_id}/",
                f"/campaigns/{sent.campaign_id}/progress/", "/campaigns/new/"):  # fmt: skip
        assert client.get(url).status_code == 200, url


def test_unsubscribe_behind_a_trusted_proxy_records_the_visitor_address(client, settings, sent):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]

    client.post(
        f"/campaigns/u/{unsubscribe_token(send_id=sent.pk)}/",
        REMOTE_ADDR="10.0.0.5",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
    )

    record = sent.customer.consent_records.latest("id")
    assert (record.state, str(record.ip_address)) == ("withdrawn", "203.0.113.9")
