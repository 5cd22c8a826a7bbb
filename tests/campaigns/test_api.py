"""The campaigns API: who may do what, the actions that drive a campaign, preview, report and
the provider's bounces and complaints."""

import pytest
from django.core import mail

from campaigns.models import Campaign, MessageEvent, Send
from campaigns.services import campaign_launch
from privacy.models import ConsentState
from tests.campaigns.factories import CampaignFactory, VariantFactory, members_add
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_api(api_client_for, marketing_user):
    return api_client_for(marketing_user)


@pytest.fixture
def launched_but_not_delivered(campaign, consenting_members, marketing_user,
                               django_capture_on_commit_callbacks):  # fmt: skip
    """A campaign whose rows are written but whose delivery has not started yet."""
    with django_capture_on_commit_callbacks(execute=False):
        campaign_launch(campaign=campaign, actor=marketing_user)
    return Campaign.objects.get(pk=campaign.pk)


@pytest.mark.parametrize("role_user", ["sales_user", "privacy_user"])
@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/campaigns/"),
        ("post", "/api/campaigns/"),
        ("get", "/api/campaigns/{pk}/"),
        ("post", "/api/campaigns/{pk}/launch/"),
        ("post", "/api/campaigns/{pk}/pause/"),
        ("post", "/api/campaigns/{pk}/resume/"),
        ("post", "/api/campaigns/{pk}/cancel/"),
        ("get", "/api/campaigns/{pk}/report/"),
        ("post", "/api/campaigns/{pk}/preview/"),
        ("post", "/api/campaigns/provider-events/"),
        ("post", "/api/campaigns/audience-estimate/"),
    ],
)
def test_staff_outside_marketing_are_refused(
    request, api_client_for, campaign, consenting_members, role_user, method, path
):
    api = api_client_for(request.getfixturevalue(role_user))

    response = getattr(api, method)(path.format(pk=campaign.pk), {}, format="json")

    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT
    assert mail.outbox == []


def test_anonymous_caller_is_refused(api_client_for, campaign):
    response = api_client_for(None).post(f"/api/campaigns/{campaign.pk}/launch/")

    assert response.status_code in (401, 403)
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.DRAFT


def test_sales_staff_cannot_launch_through_the_service_either(campaign, sales_user):
    with pytest.raises(PermissionError):
        campaign_launch(campaign=campaign, actor=sales_user)


def test_marketer_creates_and_launches_a_campaign(
    marketer_api, segment, consenting_members, django_capture_on_commit_callbacks
):
    created = marketer_api.post(
        "/api/campaigns/",
        {"name": "Autumn", "target_segments": [segment.pk], "holdout_percent": "0"},
        format="json",
    )
    pk = created.json()["id"]
    marketer_api.post(f"/api/campaigns/{pk}/variants/",
                      {"subject": "Hi {{ customer.first_name }}", "text": "Autumn is here."},
                      format="json")  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        launched = marketer_api.post(f"/api/campaigns/{pk}/launch/")

    assert created.status_code == 201
    assert launched.status_code == 200 and launched.json()["status"] == "sending"
    assert Campaign.objects.get(pk=pk).status == Campaign.Status.SENT
    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in consenting_members)


def test_launch_without_a_variant_names_what_is_missing(marketer_api, segment):
    campaign = CampaignFactory()
    campaign.target_segments.add(segment)

    response = marketer_api.post(f"/api/campaigns/{campaign.pk}/launch/")

    assert response.status_code == 400
    assert "variants" in response.json()


def test_pause_holds_the_rest_and_resume_sends_it(
    marketer_api, launched_but_not_delivered, django_capture_on_commit_callbacks
):
    pk = launched_but_not_delivered.pk

    paused = marketer_api.post(f"/api/campaigns/{pk}/pause/")
    with django_capture_on_commit_callbacks(execute=True):
        marketer_api.post(f"/api/campaigns/{pk}/resume/")

    assert paused.json()["status"] == "paused"
    assert Campaign.objects.get(pk=pk).status == Campaign.Status.SENT
    assert len(mail.outbox) == 5


def test_paused_campaign_sends_nothing(
    marketer_api, launched_but_not_delivered, django_capture_on_commit_callbacks
):
    from campaigns.services import campaign_dispatch

    marketer_api.post(f"/api/campaigns/{launched_but_not_delivered.pk}/pause/")

    campaign_dispatch(campaign=Campaign.objects.get(pk=launched_but_not_delivered.pk))

    assert mail.outbox == []


def test_cancel_mid_send_marks_the_rest_cancelled(marketer_api, launched_but_not_delivered):
    pk = launched_but_not_delivered.pk

    response = marketer_api.post(f"/api/campaigns/{pk}/cancel/")

    assert response.json()["status"] == "cancelled"
    statuses = set(Send.objects.filter(campaign_id=pk).values_list("status", flat=True))
    assert statuses == {Send.Status.CANCELLED}
    progress = marketer_api.get(f"/api/campaigns/{pk}/report/").json()["progress"]
    assert (progress["cancelled"], progress["remaining"]) == (5, 0)


def test_resuming_a_campaign_that_is_not_paused_is_refused(marketer_api, campaign):
    response = marketer_api.post(f"/api/campaigns/{campaign.pk}/resume/")

    assert response.status_code == 400
    assert "status" in response.json()


def test_report_has_totals_variants_holdout_uplift_and_progress(
    marketer_api, campaign, consenting_members, launch
):
    launch(campaign)

    report = marketer_api.get(f"/api/campaigns/{campaign.pk}/report/").json()

    assert report["totals"]["sent"] == 5
    assert [v["variant"] for v in report["variants"]] == ["A"]
    assert set(report["holdout"]) >= {"audience", "converted", "revenue"}
    assert report["progress"]["percent"] == 100
    assert "uplift" in report


def test_preview_renders_the_message_for_the_chosen_customer(marketer_api, campaign, segment):
    customer = CustomerFactory(first_name="Ines")
    members_add(segment, [customer])
    variant = campaign.variants.get()

    response = marketer_api.post(f"/api/campaigns/{campaign.pk}/preview/",
                                 {"customer": customer.pk, "variant": variant.pk}, format="json")  # fmt: skip

    assert response.status_code == 200
    assert response.json()["subject"] == "Hello Ines"
    assert "<p>Hi Ines</p>" in response.json()["html"]


def test_preview_names_the_bad_field(marketer_api, campaign):
    other = VariantFactory(campaign=CampaignFactory())
    customer = CustomerFactory()
    url = f"/api/campaigns/{campaign.pk}/preview/"

    no_customer = marketer_api.post(url, {"customer": 999999}, format="json")
    not_a_number = marketer_api.post(url, {"customer": "ines"}, format="json")
    foreign_variant = marketer_api.post(url, {"customer": customer.pk, "variant": other.pk},
                                        format="json")  # fmt: skip

    assert no_customer.status_code == 400 and "customer" in no_customer.json()
    assert not_a_number.status_code == 400 and "customer" in not_a_number.json()
    assert foreign_variant.status_code == 400 and "variant" in foreign_variant.json()


def test_preview_of_an_erased_customer_is_refused(marketer_api, campaign):
    from django.utils import timezone

    erased = CustomerFactory(erased_at=timezone.now())

    response = marketer_api.post(f"/api/campaigns/{campaign.pk}/preview/",
                                 {"customer": erased.pk}, format="json")  # fmt: skip

    assert response.status_code == 400


def test_variant_of_another_campaign_cannot_be_changed_through_this_one(marketer_api, campaign):
    other = VariantFactory(campaign=CampaignFactory(), subject="Theirs")

    response = marketer_api.patch(f"/api/campaigns/{campaign.pk}/variants/{other.pk}/",
                                  {"subject": "Ours"}, format="json")  # fmt: skip

    assert response.status_code == 404
    other.refresh_from_db()
    assert other.subject == "Theirs"


def test_sent_campaign_can_no_longer_be_edited(marketer_api, campaign, consenting_members, launch):
    launch(campaign)

    response = marketer_api.patch(f"/api/campaigns/{campaign.pk}/", {"name": "Renamed"},
                                  format="json")  # fmt: skip

    assert response.status_code == 400 and "status" in response.json()


def test_provider_events_api_records_bounces_and_complaints(
    marketer_api, campaign, consenting_members, launch
):
    launch(campaign)
    first, second = Send.objects.filter(campaign=campaign).order_by("pk")[:2]

    response = marketer_api.post(
        "/api/campaigns/provider-events/",
        {
            "events": [
                {"type": "bounce", "message_id": first.provider_message_id, "detail": "5.1.1"},
                {"type": "complaint", "send_id": second.pk},
                {"type": "bounce", "message_id": "<nobody@crm.local>"},
            ]
        },  # fmt: skip
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == {"recorded": 2, "unknown": 1, "errors": []}
    assert first.events.get().kind == MessageEvent.Kind.BOUNCE
    # A complaint is a withdrawal: nobody mails this person for the purpose again.
    state = ConsentState.objects.get(customer=second.customer, purpose="email_marketing")
    assert state.state == "withdrawn"
    totals = marketer_api.get(f"/api/campaigns/{campaign.pk}/report/").json()["totals"]
    assert (totals["bounced"], totals["complained"], totals["delivered"]) == (1, 1, 4)


def test_provider_events_api_names_the_bad_event(marketer_api):
    response = marketer_api.post("/api/campaigns/provider-events/",
                                 {"events": [{"type": "open"}]}, format="json")  # fmt: skip
    missing = marketer_api.post("/api/campaigns/provider-events/", {}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == ["events[0].type: expected bounce or complaint"]
    assert missing.status_code == 400
    assert missing.json()["errors"] == ["events: expected a list of events"]


def test_audience_estimate_of_unsaved_settings(marketer_api, segment, consenting_members):
    from tests.segments.factories import StaticSegmentFactory

    vip = StaticSegmentFactory()
    members_add(vip, consenting_members[:1])
    silent = CustomerFactory()
    members_add(segment, [silent])

    response = marketer_api.post("/api/campaigns/audience-estimate/",
                                 {"target_segments": [segment.pk], "exclusion_segments": [vip.pk]},
                                 format="json")  # fmt: skip

    assert response.status_code == 200
    assert response.json() == {"targeted": 6, "recipients": 4, "holdout": 0,
                               "excluded": {"exclusion_segment": 1, "no_consent": 1},
                               "holdout_estimated": False}  # fmt: skip
    assert not Campaign.objects.exists()


def test_audience_estimate_names_the_bad_setting(marketer_api, segment):
    response = marketer_api.post("/api/campaigns/audience-estimate/",
                                 {"target_segments": [segment.pk], "holdout_percent": "75"},
                                 format="json")  # fmt: skip

    channel = marketer_api.post("/api/campaigns/audience-estimate/",
                                {"target_segments": [segment.pk], "channel": "pigeon"},
                                format="json")  # fmt: skip

    assert response.status_code == 400
    assert "holdout_percent" in response.json()
    assert channel.status_code == 400
    assert channel.json() == {"channel": ["expected one of email, webhook"]}
