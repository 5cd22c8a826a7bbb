"""The webhook channel: one signed JSON POST per recipient to a real HTTP server on loopback."""

import hashlib
import hmac

import pytest

from campaigns.models import Campaign, Channel, PromotionCode, Send
from campaigns.services import promotion_set
from privacy.services import consent_withdraw
from tests.campaigns.factories import CampaignFactory, VariantFactory

pytestmark = pytest.mark.django_db

SECRET = "shop-shared-secret"


@pytest.fixture
def webhook_campaign(segment, receiver, marketing_user):
    campaign = CampaignFactory(
        channel=Channel.WEBHOOK, webhook_url=receiver.url, webhook_secret=SECRET
    )
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    promotion_set(campaign=campaign, actor=marketing_user, discount="amount", value=5)
    return campaign


def _verify(headers, body: bytes, secret: str = SECRET) -> bool:
    """What the receiving shop does: recompute the HMAC over "<timestamp>.<body>"."""
    signed = headers["X-CRM-Timestamp"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
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


@pytest.fixture
def webhook_campaign_from_the_api(api_client_for, marketing_user, segment, receiver):
    """A webhook campaign as a marketer creates it, with the secret the API shows them."""
    api = api_client_for(marketing_user)
    created = api.post(
        "/api/campaigns/",
        {
            "name": "Shop sync",
            "channel": "webhook",
            "webhook_url": receiver.url,
            "target_segments": [segment.pk],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    campaign = Campaign.objects.get(pk=created.json()["id"])
    VariantFactory(campaign=campaign, name="A")
    return campaign, created.json()["webhook_secret"]


def test_the_receiver_verifies_with_the_campaigns_own_secret_and_nothing_from_the_secret_key(
    settings, webhook_campaign_from_the_api, consenting_members, receiver, launch
):
    campaign, shown_secret = webhook_campaign_from_the_api

    launch(campaign)

    headers, body = receiver.requests[0]
    assert _verify(headers, body, shown_secret)
    key = settings.SECRET_KEY
    for derived in (
        key,
        f"webhook:{key}",
        f"webhook{key}",
        hashlib.sha256(key.encode()).hexdigest(),
    ):
        assert not _verify(headers, body, derived)
    assert key not in shown_secret and len(shown_secret) >= 40


def test_each_webhook_campaign_gets_a_secret_of_its_own(api_client_for, marketing_user, receiver):
    api = api_client_for(marketing_user)
    body = {"name": "Sync", "channel": "webhook", "webhook_url": receiver.url}

    first = api.post("/api/campaigns/", body, format="json").json()["webhook_secret"]
    second = api.post("/api/campaigns/", body, format="json").json()["webhook_secret"]

    assert first and second and first != second


def test_an_email_campaign_switched_to_webhook_gets_a_secret(api_client_for, marketing_user):
    api = api_client_for(marketing_user)
    created = api.post("/api/campaigns/", {"name": "News"}, format="json").json()

    changed = api.patch(
        f"/api/campaigns/{created['id']}/",
        {"channel": "webhook", "webhook_url": "https://shop.example/hook"},
        format="json",
    )

    assert created["webhook_secret"] == ""
    assert len(changed.json()["webhook_secret"]) >= 40


def test_a_site_wide_webhook_secret_is_given_to_new_webhook_campaigns(
    settings, api_client_for, marketing_user
):
    settings.CAMPAIGNS_WEBHOOK_SECRET = "one-secret-for-our-single-receiver"

    created = api_client_for(marketing_user).post(
        "/api/campaigns/",
        {"name": "Sync", "channel": "webhook", "webhook_url": "https://shop.example/hook"},
        format="json",
    )

    assert created.json()["webhook_secret"] == "one-secret-for-our-single-receiver"


def test_rotating_the_secret_signs_later_posts_with_the_new_one(
    api_client_for,
    marketing_user,
    webhook_campaign_from_the_api,
    consenting_members,
    receiver,
    launch,
):
    campaign, old_secret = webhook_campaign_from_the_api

    rotated = api_client_for(marketing_user).post(
        f"/api/campaigns/{campaign.pk}/rotate-webhook-secret/"
    )
    launch(Campaign.objects.get(pk=campaign.pk))

    new_secret = rotated.json()["webhook_secret"]
    headers, body = receiver.requests[0]
    assert rotated.status_code == 200 and new_secret != old_secret
    assert _verify(headers, body, new_secret) and not _verify(headers, body, old_secret)


def test_the_campaign_page_shows_the_secret_and_rotates_it(
    client, marketing_user, webhook_campaign
):
    client.force_login(marketing_user)

    page = client.get(f"/campaigns/{webhook_campaign.pk}/")
    client.post(f"/campaigns/{webhook_campaign.pk}/rotate-webhook-secret/")
    after = client.get(f"/campaigns/{webhook_campaign.pk}/")

    new_secret = Campaign.objects.get(pk=webhook_campaign.pk).webhook_secret
    assert f'<code id="webhook-secret">{SECRET}</code>' in page.content.decode()
    assert new_secret != SECRET and new_secret in after.content.decode()


def test_sales_staff_cannot_rotate_a_webhook_secret(client, sales_user, webhook_campaign):
    client.force_login(sales_user)

    client.post(f"/campaigns/{webhook_campaign.pk}/rotate-webhook-secret/")

    assert Campaign.objects.get(pk=webhook_campaign.pk).webhook_secret == SECRET


def test_a_webhook_campaign_without_a_secret_cannot_be_launched(
    api_client_for, marketing_user, webhook_campaign, consenting_members, receiver
):
    Campaign.objects.filter(pk=webhook_campaign.pk).update(webhook_secret="")

    response = api_client_for(marketing_user).post(f"/api/campaigns/{webhook_campaign.pk}/launch/")

    assert response.status_code == 400
    assert "no signing secret" in str(response.json()["webhook_secret"])
    assert receiver.requests == []
