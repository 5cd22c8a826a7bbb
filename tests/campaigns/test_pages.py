"""The marketer's pages (list, live audience size, sending view), the customer timeline, the
one-click unsubscribe of RFC 8058, the A/B split across batches and the frequency cap."""

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from campaigns.audience import bucket
from campaigns.links import click_url, open_url, unsubscribe_token
from campaigns.models import Campaign, Send
from customers.models import Customer
from privacy.models import ConsentRecord, ConsentState
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory

pytestmark = pytest.mark.django_db


def _campaigns(n: int, segment) -> None:
    for _ in range(n):
        campaign = CampaignFactory()
        campaign.target_segments.add(segment, StaticSegmentFactory())


def test_campaign_list_queries_do_not_grow_with_the_campaigns(
    client, marketing_user, segment, django_assert_max_num_queries
):
    client.force_login(marketing_user)
    _campaigns(2, segment)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get("/campaigns/")
    _campaigns(20, segment)

    with django_assert_max_num_queries(len(few)):
        response = client.get("/campaigns/")

    assert response.content.decode().count('href="/campaigns/') >= 22


def test_audience_size_follows_unsaved_settings(
    client, marketing_user, segment, consenting_members
):
    vip = StaticSegmentFactory(name="VIP")
    members_add(vip, consenting_members[:2])
    client.force_login(marketing_user)
    base = {"channel": "email", "consent_purpose": "email_marketing", "frequency_cap_count": 0,
            "frequency_cap_days": 7, "holdout_percent": 0, "target_segments": [segment.pk]}  # fmt: skip

    everyone = client.get("/campaigns/audience-size/", base)
    without_vip = client.get("/campaigns/audience-size/", {**base, "exclusion_segments": [vip.pk]})

    assert everyone.context["estimate"]["recipients"] == 5
    assert without_vip.context["estimate"]["recipients"] == 3
    assert "In an exclusion segment: 2" in without_vip.content.decode()
    assert Campaign.objects.count() == 0  # nothing was saved to count


def test_audience_size_of_a_saved_campaign_uses_the_settings_on_screen(
    client, marketing_user, campaign, consenting_members
):
    client.force_login(marketing_user)
    other = StaticSegmentFactory()
    settings_on_screen = {"channel": "email", "consent_purpose": "email_marketing",
                          "frequency_cap_count": 0, "frequency_cap_days": 7,
                          "holdout_percent": 0, "target_segments": [other.pk]}  # fmt: skip

    response = client.get(f"/campaigns/{campaign.pk}/audience-size/", settings_on_screen)

    assert response.context["estimate"]["targeted"] == 0
    assert list(campaign.target_segments.values_list("pk", flat=True)) != [other.pk]


def test_audience_size_names_a_bad_setting(client, marketing_user, segment):
    client.force_login(marketing_user)

    response = client.get("/campaigns/audience-size/", {"channel": "email",
                          "consent_purpose": "email_marketing", "frequency_cap_count": 0,
                          "frequency_cap_days": 7, "holdout_percent": 80})  # fmt: skip

    assert response.status_code == 200
    assert (
        "Holdout percent: Ensure this value is less than or equal to 50."
        in response.content.decode()
    )


@pytest.mark.parametrize("field", ["target_segments", "exclusion_segments"])
def test_audience_size_refuses_a_segment_id_beyond_the_database_integers(
    client, marketing_user, segment, field
):
    client.force_login(marketing_user)
    settings_on_screen = {"channel": "email", "consent_purpose": "email_marketing",
                          "frequency_cap_count": 0, "frequency_cap_days": 7,
                          "holdout_percent": 0, "target_segments": [segment.pk],
                          field: ["99999999999999999999"]}  # fmt: skip

    response = client.get("/campaigns/audience-size/", settings_on_screen)

    assert response.status_code == 200
    assert response.context["form_errors"][field] == [
        "Select a valid choice. 99999999999999999999 is not one of the available choices."
    ]


def test_sending_view_links_to_the_report_once_done(
    client, marketing_user, campaign, consenting_members, launch
):
    launch(campaign)
    client.force_login(marketing_user)

    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert 'id="progress-sent">5<' in page and 'id="progress-remaining">0<' in page
    assert f'href="/campaigns/{campaign.pk}/report/" id="open-report"' in page


def test_sending_view_keeps_polling_while_sending(
    client, marketing_user, campaign, consenting_members, django_capture_on_commit_callbacks
):
    from campaigns.services import campaign_launch

    with django_capture_on_commit_callbacks(execute=False):
        campaign_launch(campaign=campaign, actor=marketing_user)
    client.force_login(marketing_user)

    fragment = client.get(f"/campaigns/{campaign.pk}/progress/").content.decode()

    assert 'hx-trigger="every 2s"' in fragment
    assert 'id="progress-remaining">5<' in fragment and "open-report" not in fragment


def test_customer_timeline_shows_messages_received_opened_and_clicked(
    client, marketing_user, campaign, consenting_members, launch
):
    launch(campaign)
    send = Send.objects.select_related("customer").filter(campaign=campaign).first()
    Client().get(open_url(send_id=send.pk).removeprefix("http://testserver"))
    Client().get(
        click_url(send_id=send.pk, url="https://shop.example/sale").removeprefix(
            "http://testserver"
        )
    )
    client.force_login(marketing_user)

    page = client.get(f"/customers/{send.customer_id}/").content.decode()

    assert f"Received “{campaign.name}”" in page
    assert f"Opened “{campaign.name}”" in page
    assert f"Clicked “{campaign.name}”" in page
    assert "Email open" not in page and "Email click" not in page  # once each, not twice
    assert "https://shop.example/sale" in page


def test_sales_staff_see_campaign_lines_on_the_timeline_without_a_link_they_cannot_open(
    client, marketing_user, sales_user, campaign, consenting_members, launch
):
    launch(campaign)
    send = Send.objects.select_related("customer").filter(campaign=campaign).first()
    Customer.objects.filter(pk=send.customer_id).update(owner=sales_user)
    link = f'href="/campaigns/{campaign.pk}/"'

    client.force_login(sales_user)
    page = client.get(f"/customers/{send.customer_id}/").content.decode()
    assert f"Received “{campaign.name}”" in page
    assert link not in page
    assert client.get(f"/campaigns/{campaign.pk}/").status_code == 403

    client.force_login(marketing_user)
    assert link in client.get(f"/customers/{send.customer_id}/").content.decode()


def test_one_click_unsubscribe_works_without_login_or_csrf_token(sent_message_send):
    provider = Client(enforce_csrf_checks=True)
    token = unsubscribe_token(send_id=sent_message_send.pk)

    response = provider.post(f"/campaigns/u/{token}/", "List-Unsubscribe=One-Click",
                             content_type="application/x-www-form-urlencoded")  # fmt: skip

    assert response.status_code == 200
    record = ConsentRecord.objects.filter(customer=sent_message_send.customer,
                                          purpose="email_marketing").latest("pk")  # fmt: skip
    assert (record.state, record.source) == ("withdrawn", "unsubscribe")


def test_link_scanners_following_the_unsubscribe_link_unsubscribe_nobody(sent_message_send):
    token = unsubscribe_token(send_id=sent_message_send.pk)

    for _ in range(3):
        Client().get(f"/campaigns/u/{token}/")
    Client().head(f"/campaigns/u/{token}/")

    state = ConsentState.objects.get(customer=sent_message_send.customer, purpose="email_marketing")
    assert state.state == "granted"
    assert not ConsentRecord.objects.filter(customer=sent_message_send.customer,
                                            state="withdrawn").exists()  # fmt: skip


def test_the_header_link_is_the_page_that_unsubscribes(sent_message_send):
    message = next(m for m in mail.outbox if m.to == [sent_message_send.customer.email])
    link = message.extra_headers["List-Unsubscribe"].strip("<>").removeprefix("http://testserver")

    page = Client().get(link)
    Client(enforce_csrf_checks=True).post(link, "List-Unsubscribe=One-Click",
                                          content_type="application/x-www-form-urlencoded")  # fmt: skip

    assert 'id="confirm-unsubscribe"' in page.content.decode()
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    state = ConsentState.objects.get(customer=sent_message_send.customer, purpose="email_marketing")
    assert state.state == "withdrawn"


def test_unsubscribed_customer_gets_no_next_campaign(
    segment, sent_message_send, consenting_members, launch
):
    Client().post(f"/campaigns/u/{unsubscribe_token(send_id=sent_message_send.pk)}/")
    mail.outbox = []
    follow_up = CampaignFactory()
    follow_up.target_segments.add(segment)
    VariantFactory(campaign=follow_up)

    launch(follow_up)

    assert sent_message_send.customer.email not in [m.to[0] for m in mail.outbox]
    assert len(mail.outbox) == len(consenting_members) - 1


@pytest.fixture
def sent_message_send(campaign, consenting_members, launch):
    launch(campaign)
    return Send.objects.select_related("customer").filter(campaign=campaign).first()


def test_split_is_the_same_whatever_the_batch_size(settings, segment, marketing_user, launch):
    customers = CustomerFactory.create_batch(120)
    members_add(segment, customers)
    consent_grant_all(customers)
    settings.CAMPAIGNS_BATCH_SIZE = 7
    campaign = CampaignFactory()
    campaign.target_segments.add(segment)
    a = VariantFactory(campaign=campaign, name="A", share=1)
    VariantFactory(campaign=campaign, name="B", share=3)

    launch(campaign)

    emails = {c.email: c.pk for c in customers}
    received = Counter()
    for message in mail.outbox:
        cut = bucket(campaign.pk, emails[message.to[0]], "variant") < 2500
        assert message.extra_headers["X-CRM-Variant"] == ("A" if cut else "B")
        received[message.extra_headers["X-CRM-Variant"]] += 1
    assert sum(received.values()) == 120
    # One share in four for A: 30 expected, well within four standard deviations.
    assert abs(received["A"] - 30) <= 4 * (120 * 0.25 * 0.75) ** 0.5
    assert Send.objects.filter(campaign=campaign, variant=a).count() == received["A"]


def test_frequency_cap_counts_only_messages_within_its_window(
    segment, consenting_members, marketing_user, launch
):
    first = CampaignFactory()
    first.target_segments.add(segment)
    VariantFactory(campaign=first)
    launch(first)
    old = consenting_members[:2]
    Send.objects.filter(campaign=first, customer__in=old).update(
        sent_at=timezone.now() - dt.timedelta(days=10)
    )
    second = CampaignFactory(frequency_cap_count=1, frequency_cap_days=7)
    second.target_segments.add(segment)
    VariantFactory(campaign=second)
    mail.outbox = []

    launch(second)

    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in old)
    assert Campaign.objects.get(pk=second.pk).exclusions == {"frequency_cap": 3}


def test_frequency_cap_spans_every_campaign(segment, consenting_members, marketing_user, launch):
    for _ in range(2):
        earlier = CampaignFactory()
        earlier.target_segments.add(segment)
        VariantFactory(campaign=earlier)
        launch(earlier)
    capped = CampaignFactory(frequency_cap_count=3, frequency_cap_days=7,
                             holdout_percent=Decimal("0"))  # fmt: skip
    capped.target_segments.add(segment)
    VariantFactory(campaign=capped)
    mail.outbox = []

    launch(capped)

    assert len(mail.outbox) == len(consenting_members)  # two of three allowed so far
    over = CampaignFactory(frequency_cap_count=3, frequency_cap_days=7)
    over.target_segments.add(segment)
    VariantFactory(campaign=over)
    launch(over)
    assert Campaign.objects.get(pk=over.pk).exclusions == {"frequency_cap": 5}


def test_sales_staff_cannot_launch_from_the_pages(client, sales_user, campaign, consenting_members):
    client.force_login(sales_user)

    response = client.post(f"/campaigns/{campaign.pk}/launch/")

    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT
    assert mail.outbox == []


def test_pause_and_resume_from_the_sending_view(
    client, marketing_user, campaign, consenting_members, django_capture_on_commit_callbacks
):
    from campaigns.services import campaign_launch

    with django_capture_on_commit_callbacks(execute=False):
        campaign_launch(campaign=campaign, actor=marketing_user)
    client.force_login(marketing_user)

    client.post(f"/campaigns/{campaign.pk}/pause/")
    paused = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/campaigns/{campaign.pk}/resume/")

    assert 'id="campaign-status">Paused<' in paused and 'id="resume"' in paused
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT
    assert len(mail.outbox) == len(consenting_members)


def test_sending_view_of_a_draft_says_it_has_not_started(client, marketing_user, campaign):
    client.force_login(marketing_user)

    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert "Not launched yet" in page and 'id="progress-bar"' not in page


def test_sending_view_of_a_scheduled_campaign_shows_its_local_time(
    client, marketing_user, campaign, consenting_members, launch
):
    campaign.send_at = dt.datetime(2031, 5, 4, 7, 30, tzinfo=dt.UTC)
    campaign.time_zone = "Europe/Paris"
    campaign.save()
    launch(campaign)
    client.force_login(marketing_user)

    page = client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert "Sending starts 2031-05-04 09:30 (Europe/Paris)." in page


def test_review_warns_when_the_message_uses_a_missing_promotion(
    client, marketing_user, campaign, consenting_members
):
    # The factory's variant says "your code is {{ promotion.code }}".
    client.force_login(marketing_user)

    page = client.get(f"/campaigns/{campaign.pk}/edit/review/").content.decode()
    preview = client.get(f"/campaigns/{campaign.pk}/preview/",
                         {"variant": campaign.variants.get().pk,
                          "customer": consenting_members[0].pk}).content.decode()  # fmt: skip

    assert "The message uses the promotion, but the campaign has none" in page
    assert 'id="launch"' in page  # a warning, not a problem
    assert 'id="preview-no-promotion"' in preview


def test_campaign_comparison_before_any_launch_says_there_is_nothing_to_compare(
    client, marketing_user, campaign
):
    client.force_login(marketing_user)

    response = client.get("/campaigns/overview/")

    assert response.status_code == 200
    assert "No launched campaign yet." in response.content.decode()


def test_preview_of_a_variant_that_is_not_a_number_is_not_found(
    client, marketing_user, campaign, consenting_members
):
    client.force_login(marketing_user)

    response = client.get(
        f"/campaigns/{campaign.pk}/preview/",
        {"variant": "first", "customer": consenting_members[0].pk},
    )

    assert response.status_code == 404
